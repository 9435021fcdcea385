"""Billing's data migration: identifiers canonical, duplicate recurring payments ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from common.db import alembic_config
from services.billing.domain import Order
from services.billing.service import MIGRATIONS

BEFORE = "ed3d0c2d365b"  # 0002: the last revision before canonical identifiers
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def upgrade(engine, revision: str) -> None:
    config = alembic_config("billing", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def test_existing_records_become_canonical_and_one_license_keeps_one_recurring_payment(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    upgrade(engine, BEFORE)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO plans (id, code, product_code, amount, currency, interval, active,"
                " created_at) VALUES (1, 'CAD-M', 'CADPRO', 4900, 'EUR', 'month', 1, :t),"
                " (2, 'cad-m', 'cadpro', 4900, 'EUR', 'month', 1, :t),"
                " (3, ' Cam-Y ', 'CAM', 9900, 'EUR', 'year', 1, :t)"
            ),
            {"t": T0},
        )
        db.execute(
            text(
                "INSERT INTO payment_methods (id, customer_id, provider, token, brand, last4,"
                " exp_month, exp_year, created_at) VALUES (1, 'c1000001', 'sandbox', 't',"
                " 'visa', '4242', 12, 2030, :t)"
            ),
            {"t": T0},
        )
        rows = [
            # the first purchase's recurring payment, and the second one a lower-case renewal
            # started for the same license (paid further ahead), and one a customer cancelled
            (1, "rp_a", "C1000001", "L-EDPQ-YVV2", "active", T0 + timedelta(days=30)),
            (2, "rp_b", " c1000001", "l-edpq-yvv2", "active", T0 + timedelta(days=60)),
            (3, "rp_c", "C1000001", "L-OTHER", "cancelled", T0 + timedelta(days=10)),
        ]
        for row_id, reference, customer, license_id, status, next_charge in rows:
            db.execute(
                text(
                    "INSERT INTO recurring_payments (id, reference, customer_id, license_id,"
                    " plan_code, product_code, seats, amount, currency, interval,"
                    " payment_method_id, next_charge_at, status, failures, created_at)"
                    " VALUES (:id, :ref, :c, :l, 'CAD-M', 'CADPRO', 2, 9800, 'EUR', 'month',"
                    " 1, :n, :s, 0, :t)"
                ),
                {
                    "id": row_id,
                    "ref": reference,
                    "c": customer,
                    "l": license_id,
                    "n": next_charge,
                    "s": status,
                    "t": T0,
                },
            )
        db.execute(
            text(
                "INSERT INTO invoices (id, recurring_payment_id, customer_id, period_start,"
                " period_end, amount, currency, status, attempts, next_attempt_at, created_at)"
                " VALUES (1, 1, 'C1000001', :p, :e, 9800, 'EUR', 'open', 0, :p, :t)"
            ),
            {"p": T0 + timedelta(days=30), "e": T0 + timedelta(days=60), "t": T0},
        )
    upgrade(engine, "head")
    with engine.connect() as db:
        plans = db.execute(text("SELECT id, code, product_code FROM plans ORDER BY id")).all()
        assert plans == [(1, "cad-m", "cadpro"), (2, "cad-m-2", "cadpro"), (3, "cam-y", "cam")]
        recurring = db.execute(
            text(
                "SELECT reference, customer_id, license_id, plan_code, status, cancelled_by"
                " FROM recurring_payments ORDER BY id"
            )
        ).all()
        assert recurring == [
            ("rp_a", "C1000001", "L-EDPQ-YVV2", "cad-m", "cancelled", "duplicate"),
            ("rp_b", "C1000001", "L-EDPQ-YVV2", "cad-m", "active", None),
            ("rp_c", "C1000001", "L-OTHER", "cad-m", "cancelled", "customer"),
        ]
        assert db.execute(text("SELECT status FROM invoices")).scalar() == "cancelled"
        methods = db.execute(text("SELECT customer_id FROM payment_methods")).scalar()
        assert methods == "C1000001"
    engine.dispose()


AUDIT_TRAIL = "c3a8f1e05d72"  # 0004: the audit trail
BEFORE_AUDIT_TRAIL = "6d42dd746948"  # 0003


def test_the_audit_trail_starts_empty_and_orders_written_before_it_still_settle(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    upgrade(engine, BEFORE_AUDIT_TRAIL)
    # an order priced before orders kept their buyer, still pending when the release ships
    old_order = {
        "kind": "new", "customer_id": "C1000001", "plan": "cad-m", "product_code": "cadpro",
        "interval": "month", "seats": 2, "unit_amount": 4900, "amount": 9800,
        "currency": "EUR", "period_start": T0.isoformat(), "period_end": T0.isoformat(),
        "license_id": None, "card": {"token": "t"}, "product_name": "CAD Pro",
    }  # fmt: skip
    upgrade(engine, "head")
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
        indexes = {row[1] for row in db.execute(text("PRAGMA index_list('audit_events')"))}
        assert "ix_audit_events_customer_at" in indexes
    assert Order.from_json(json.dumps(old_order)).actor is None
    config = alembic_config("billing", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE_AUDIT_TRAIL)
        connection.commit()
    with engine.connect() as db:
        tables = {row[0] for row in db.execute(text("SELECT name FROM sqlite_master"))}
        assert "audit_events" not in tables
    upgrade(engine, AUDIT_TRAIL)
    engine.dispose()


STRIPE = "7c1e5a9d3b07"  # 0007: Stripe's customers, webhook events, disputes


def test_stripe_tables_and_columns_come_and_go_with_0007(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    upgrade(engine, STRIPE)
    with engine.connect() as db:
        tables = {row[0] for row in db.execute(text("SELECT name FROM sqlite_master"))}
        assert {"provider_customers", "webhook_events"} <= tables
        columns = {row[1] for row in db.execute(text("PRAGMA table_info('payments')"))}
        assert {"refunded_amount", "dispute_status", "disputed_at"} <= columns
        indexes = {row[1] for row in db.execute(text("PRAGMA index_list('charges')"))}
        assert "uq_charges_purchase_id" in indexes
    config = alembic_config("billing", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "4b7d2e9a6f06")
        connection.commit()
    with engine.connect() as db:
        tables = {row[0] for row in db.execute(text("SELECT name FROM sqlite_master"))}
        assert "webhook_events" not in tables and "provider_customers" not in tables
        columns = {row[1] for row in db.execute(text("PRAGMA table_info('charges')"))}
        assert "purchase_id" not in columns
    upgrade(engine, "head")
    engine.dispose()


STRIPE_REVIEW = "2e8b6c4f1a08"  # 0008: the database's own ID, refunds billing asked for


def test_0008_draws_one_instance_id_per_database_and_marks_refunds_asked(tmp_path: Path) -> None:
    drawn = []
    for name in ("one.db", "two.db"):
        engine = create_engine(f"sqlite:///{tmp_path / name}")
        upgrade(engine, STRIPE_REVIEW)
        with engine.connect() as db:
            rows = db.execute(text("SELECT slot, instance_id FROM billing_instance"))
            [(slot, instance_id)] = rows
            assert slot == 1 and len(instance_id) == 16
            drawn.append(instance_id)
            columns = {row[1] for row in db.execute(text("PRAGMA table_info('payments')"))}
            assert "refund_requested_at" in columns
        engine.dispose()
    assert drawn[0] != drawn[1]
    engine = create_engine(f"sqlite:///{tmp_path / 'one.db'}")
    config = alembic_config("billing", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, STRIPE)
        connection.commit()
    with engine.connect() as db:
        tables = {row[0] for row in db.execute(text("SELECT name FROM sqlite_master"))}
        assert "billing_instance" not in tables
    engine.dispose()
