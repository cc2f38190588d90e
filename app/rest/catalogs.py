"""`/v2/catalogs`: SAT's CFDI 4.0 catalogs shipped with the product (the upstream API's
"Catalogs" section). Handlers translate `app.catalogs.service` results to the documented JSON."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from app.auth.principal import Principal
from app.catalogs import service
from app.catalogs.store import CfdiUse, Neighborhood, Place, PostalCode, TaxSystem
from app.core.errors import ValidationFailed
from app.http.deps import principal
from app.rest.schemas import ErrorEnvelope

PARAMS = frozenset({"code", "limit", "offset"})

router = APIRouter(
    prefix="/v2/catalogs",
    tags=["catalogs"],
    dependencies=[Depends(HTTPBearer(auto_error=False, description="sk_live_… or sk_test_…"))],
)
Auth = Annotated[Principal, Depends(principal)]


class CatalogOut(BaseModel):
    id: str = Field(examples=["c_RegimenFiscal"])
    name: str = Field(examples=["Régimen fiscal"])
    source: str = Field(examples=["SAT catCFDI via satcfdi (PyPI)"])
    version: str = Field(description="Version of the package the data was generated from")
    count: int = Field(description="Entries in the whole catalog")


class CatalogListEnvelope(BaseModel):
    data: list[CatalogOut]
    message: str


class CatalogWithEntries(CatalogOut):
    entries: list[dict[str, Any]] = Field(
        description="c_RegimenFiscal: {code, description, fisica, moral}; c_UsoCFDI: {code, "
        "description, fisica, moral, taxSystems}; c_CodigoPostal: {code, state, stateName, "
        "municipality, municipalityName, locality, localityName, neighborhoods}; c_Estado: "
        "{code, name, country}; c_Municipio and c_Localidad: {code, state, name}; c_Colonia: "
        "{code, zipCode, name}"
    )


class CatalogEnvelope(BaseModel):
    data: CatalogWithEntries
    message: str
    totalResults: int = Field(description="Entries matching `code` (or the whole catalog)")
    hasMore: bool


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "VALIDATION_ERROR: bad or unknown parameter"},
    401: {"model": ErrorEnvelope, "description": "UNAUTHORIZED"},
    429: {"model": ErrorEnvelope, "description": "RATE_LIMITED"},
    500: {"model": ErrorEnvelope, "description": "INTERNAL_ERROR"},
}


def entry_json(entry: Any) -> dict[str, Any]:
    if isinstance(entry, TaxSystem):
        return {
            "code": entry.code,
            "description": entry.description,
            "fisica": entry.fisica,
            "moral": entry.moral,
        }
    if isinstance(entry, CfdiUse):
        return {
            "code": entry.code,
            "description": entry.description,
            "fisica": entry.fisica,
            "moral": entry.moral,
            "taxSystems": list(entry.tax_systems),
        }
    if isinstance(entry, PostalCode):
        return postal_code_json(entry)
    if isinstance(entry, Place):
        if entry.code == entry.state:
            return {"code": entry.code, "name": entry.name, "country": entry.country}
        return {"code": entry.code, "state": entry.state, "name": entry.name}
    zip_code, neighborhood = entry
    assert isinstance(neighborhood, Neighborhood)
    return {"code": neighborhood.code, "zipCode": zip_code, "name": neighborhood.name}


def postal_code_json(p: PostalCode) -> dict[str, Any]:
    return {
        "code": p.code,
        "state": p.state,
        "stateName": p.state_name,
        "municipality": p.municipality,
        "municipalityName": p.municipality_name,
        "locality": p.locality,
        "localityName": p.locality_name,
        "neighborhoods": [n.name for n in p.neighborhoods],
    }


def _info_json(info: service.CatalogInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "source": info.source,
        "version": info.version,
        "count": info.count,
    }


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


def _check_query(request: Request, allowed: frozenset[str]) -> None:
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    errors = {k: "Unknown query parameter" for k in seen if k not in allowed}
    errors.update(
        {k: "Repeated query parameter" for k, n in seen.items() if n > 1 and k in allowed}
    )
    if errors:
        raise ValidationFailed(errors)


@router.get(
    "",
    response_model=CatalogListEnvelope,
    summary="List the SAT catalogs",
    responses=_ERRORS,
)
async def list_catalogs(request: Request, who: Auth) -> Response:
    _check_query(request, frozenset())
    return _json(
        {
            "data": [_info_json(info) for info in service.list_catalogs()],
            "message": "Catalogs retrieved successfully",
        }
    )


@router.get(
    "/{catalogId}",
    response_model=CatalogEnvelope,
    summary="Read a SAT catalog (paged; `code` for one entry)",
    responses={
        **_ERRORS,
        404: {"model": ErrorEnvelope, "description": "NOT_FOUND: no such catalog"},
    },
)
async def get_catalog(
    request: Request,
    who: Auth,
    catalogId: Annotated[str, Path(description="c_RegimenFiscal, c_UsoCFDI, c_CodigoPostal, …")],
    code: Annotated[str | None, Query(max_length=64, description="Exact code")] = None,
    limit: Annotated[
        int | None,
        Query(
            description=f"1..{service.MAX_LIMIT}, default {service.DEFAULT_LIMIT}",
            json_schema_extra={"minimum": 1, "maximum": service.MAX_LIMIT},
        ),
    ] = None,
    offset: Annotated[
        int | None, Query(description="0 or more", json_schema_extra={"minimum": 0})
    ] = None,
) -> Response:
    _check_query(request, PARAMS)
    page = service.get_catalog(catalogId, code=code, limit=limit, offset=offset)
    return _json(
        {
            "data": {**_info_json(page.info), "entries": [entry_json(e) for e in page.entries]},
            "message": "Catalog retrieved successfully",
            "totalResults": page.total,
            "hasMore": page.has_more,
        }
    )
