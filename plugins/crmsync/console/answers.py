"""What the console's and the receiver's routes declare they answer besides their own success
(their OpenAPI description, which the suite fuzzes): a refusal's ``{"detail": "..."}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Detail(BaseModel):
    detail: str


def answer(description: str, model: type[BaseModel] = Detail) -> dict[str, Any]:
    """A ``responses=`` entry: a JSON answer of ``model``."""
    return {"description": description, "model": model}
