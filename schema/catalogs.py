"""GraphQL over SAT's catalogs: `taxSystems`, `cfdiUses(taxSystem:)`, `postalCode(code:)`.

Thin: `app.catalogs.service` answers; these types only rename its values.
"""

from __future__ import annotations

import strawberry

from app.catalogs import service
from app.catalogs import store as domain


@strawberry.type(description="A c_RegimenFiscal entry in force for CFDI 4.0")
class TaxSystem:
    code: str
    description: str
    fisica: bool = strawberry.field(description="Applies to personas físicas (13-character RFC)")
    moral: bool = strawberry.field(description="Applies to personas morales (12-character RFC)")

    @classmethod
    def from_domain(cls, t: domain.TaxSystem) -> TaxSystem:
        return cls(code=t.code, description=t.description, fisica=t.fisica, moral=t.moral)


@strawberry.type(description="A c_UsoCFDI entry in force for CFDI 4.0")
class CfdiUse:
    code: str
    description: str
    fisica: bool
    moral: bool
    tax_systems: list[str] = strawberry.field(
        description="The c_RegimenFiscal codes SAT allows this use for"
    )

    @classmethod
    def from_domain(cls, u: domain.CfdiUse) -> CfdiUse:
        return cls(
            code=u.code,
            description=u.description,
            fisica=u.fisica,
            moral=u.moral,
            tax_systems=list(u.tax_systems),
        )


@strawberry.type(description="A c_CodigoPostal entry: what a form needs to fill an address")
class PostalCode:
    code: str
    state: str = strawberry.field(description="c_Estado code, e.g. CMX")
    state_name: str | None
    municipality: str | None = strawberry.field(description="c_Municipio code, when SAT has one")
    municipality_name: str | None
    locality: str | None = strawberry.field(description="c_Localidad code, when SAT has one")
    locality_name: str | None
    neighborhoods: list[str] = strawberry.field(description="c_Colonia names of this code")

    @classmethod
    def from_domain(cls, p: domain.PostalCode) -> PostalCode:
        return cls(
            code=p.code,
            state=p.state,
            state_name=p.state_name,
            municipality=p.municipality,
            municipality_name=p.municipality_name,
            locality=p.locality,
            locality_name=p.locality_name,
            neighborhoods=[n.name for n in p.neighborhoods],
        )


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="c_RegimenFiscal: the régimenes fiscales in force")
    def tax_systems(self) -> list[TaxSystem]:
        return [TaxSystem.from_domain(t) for t in service.tax_systems()]

    @strawberry.field(
        description="c_UsoCFDI: every use, or only those allowed for `taxSystem` when given"
    )
    def cfdi_uses(self, tax_system: str | None = None) -> list[CfdiUse]:
        return [CfdiUse.from_domain(u) for u in service.cfdi_uses(tax_system)]

    @strawberry.field(description="c_CodigoPostal: a SAT zip code, or null when SAT has none")
    def postal_code(self, code: str) -> PostalCode | None:
        found = service.postal_code(code)
        return None if found is None else PostalCode.from_domain(found)
