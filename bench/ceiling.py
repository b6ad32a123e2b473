"""The ceiling a node's write path is measured against: bare FastAPI + SQLModel + SQLite (WAL) inserting one row
per `POST /ledger/movements` (sync endpoint in the threadpool like the node's, same pragmas, one uvicorn worker).

Run as `python -m bench.ceiling PORT DB [FULL|NORMAL]`; bench/bench_write_path.py starts it beside a node.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import event
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, create_engine


class Row(SQLModel, table=True):
    id: int | None = SQLField(default=None, primary_key=True)
    body: str


class EvidenceIn(BaseModel):
    source: str
    reference: str


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    sku: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)
    location: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)
    expires_on: str | None = None
    evidence: list[EvidenceIn] = []


def app_for(db: str, synchronous: str) -> FastAPI:
    engine = create_engine(f"sqlite:///{db}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    SQLModel.metadata.create_all(engine)
    app = FastAPI()

    @app.post("/ledger/movements", status_code=201)
    def post(body: ReceiptIn, authorization: str | None = Header(None)) -> dict[str, Any]:
        with Session(engine) as s:
            row = Row(body=json.dumps(body.model_dump()))
            s.add(row)
            s.commit()
            s.refresh(row)
            return {"id": row.id}

    return app


if __name__ == "__main__":
    port, db = int(sys.argv[1]), sys.argv[2]
    synchronous = sys.argv[3] if len(sys.argv) > 3 else "FULL"
    uvicorn.run(app_for(db, synchronous), host="127.0.0.1", port=port, log_level="warning")
