"""SQLAlchemy's inspector, as Superset runs it when a database is added, and pandas."""

import pandas as pd
import sqlalchemy as sa


def test_inspector_reflects_the_demo(engine):
    insp = sa.inspect(engine)
    schemas = insp.get_schema_names()
    assert {"insurance", "pension", "health", "amar"} <= set(schemas)
    assert "contributions" in insp.get_table_names(schema="insurance")
    assert set(insp.get_table_names(schema="pension")) == {"payments", "pensioners"}

    columns = {c["name"]: c for c in insp.get_columns("contributions", schema="insurance")}
    assert isinstance(columns["id"]["type"], sa.BIGINT)
    assert isinstance(columns["province_code"]["type"], sa.SMALLINT)
    assert isinstance(columns["wage"]["type"], sa.NUMERIC)
    assert columns["wage"]["type"].precision == 14
    assert isinstance(columns["period"]["type"], sa.DATE)
    assert isinstance(columns["paid_at"]["type"], sa.TIMESTAMP)
    assert columns["paid_at"]["nullable"] and not columns["id"]["nullable"]

    pk = insp.get_pk_constraint("contributions", schema="insurance")
    assert pk["constrained_columns"] == ["id"]
    assert pk["name"] == "contributions_pkey"
    assert insp.get_foreign_keys("contributions", schema="insurance") == []
    assert insp.get_table_comment("contributions", schema="insurance")["text"] == "حق بیمه ماهانه هر بیمه‌شده به تفکیک کارگاه"
    assert columns["wage"]["comment"] == "دستمزد مشمول کسر حق بیمه (ریال)"
    assert insp.has_table("provinces", schema="insurance")
    assert not insp.has_table("nothing", schema="insurance")


def test_pandas_reads_a_federated_query(engine):
    df = pd.read_sql(
        sa.text(
            "SELECT p.name_en, count(*) AS claims FROM health.claims c "
            "JOIN insurance.provinces p ON p.code = c.province_code "
            "GROUP BY p.name_en ORDER BY claims DESC"
        ),
        engine,
    )
    assert list(df.columns) == ["name_en", "claims"]
    assert len(df) == 31
    assert df.iloc[0]["name_en"] == "Tehran"


def test_pandas_gets_typed_columns(engine):
    df = pd.read_sql(sa.text("SELECT id, period, wage FROM insurance.contributions ORDER BY id LIMIT 100"), engine)
    assert str(df["id"].dtype) == "int64"
    assert len(df) == 100


def test_pandas_reads_in_chunks_through_a_server_side_cursor(engine):
    with engine.connect().execution_options(stream_results=True) as conn:
        chunks = list(
            pd.read_sql(sa.text("SELECT id, province_code FROM insurance.contributions ORDER BY id"), conn, chunksize=10_000)
        )
    total = pd.read_sql(sa.text("SELECT count(*) AS n FROM insurance.contributions"), engine)["n"][0]
    assert sum(len(c) for c in chunks) == total
    assert len(chunks) == -(-total // 10_000)
    assert all(len(c) == 10_000 for c in chunks[:-1])
