// node-postgres (`pg`) against Amar, as a Node.js service or dashboard backend uses it:
// the catalog through information_schema, the types of a result's fields, bound
// parameters with Persian text, and a large result read in pages through pg-cursor,
// which asks for a few rows at a time from one portal (Execute with a row limit).
//
// Run: AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT=PORT node --test clients/node/test.mjs
// AMAR_NODE_MODULES names the directory whose node_modules holds the `pg` to test:
// clients/node (the pinned release, the default) or clients/node/current (the newest).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const modules = path.resolve(process.env.AMAR_NODE_MODULES ?? path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(modules, 'package.json'));
const pg = require('pg');
const Cursor = require('pg-cursor');
const version = require('pg/package.json').version;

// PostgreSQL's type oids, as node-postgres reports them in `fields[].dataTypeID`.
const INT2 = 21;
const INT4 = 23;
const INT8 = 20;
const TEXT = 25;
const NUMERIC = 1700;
const DATE = 1082;
const TIMESTAMP = 1114;

function connect(user = 'admin', password = user) {
  return new pg.Client({
    host: process.env.AMAR_PG_HOST ?? '127.0.0.1',
    port: Number(process.env.AMAR_PG_PORT ?? 6543),
    database: 'amar',
    user,
    password,
  });
}

describe(`node-postgres ${version} from ${path.relative(process.cwd(), modules) || '.'}`, () => {
  let client;
  before(async () => {
    client = connect();
    await client.connect();
  });
  after(() => client?.end());

  test('the pg under test is the one from the chosen directory', () => {
    const resolved = require.resolve('pg');
    assert.ok(resolved.startsWith(path.join(modules, 'node_modules') + path.sep), resolved);
  });

  test('connects to the database amar as its user, a PostgreSQL 16', async () => {
    const { rows } = await client.query('SELECT current_database() AS db, current_user AS who');
    assert.deepEqual(rows, [{ db: 'amar', who: 'admin' }]);
    const { rows: [{ server_version }] } = await client.query('SHOW server_version');
    assert.match(server_version, /^16\./);
  });

  test('lists schemas and the tables of one', async () => {
    const schemas = await client.query('SELECT schema_name FROM information_schema.schemata ORDER BY schema_name');
    const names = schemas.rows.map((r) => r.schema_name);
    for (const schema of ['amar', 'health', 'insurance', 'pension']) {
      assert.ok(names.includes(schema), `${schema} in ${names}`);
    }
    const tables = await client.query(
      'SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      ['insurance'],
    );
    const types = Object.fromEntries(tables.rows.map((r) => [r.table_name, r.table_type]));
    assert.equal(types.provinces, 'BASE TABLE');
    assert.equal(types.contributions, 'BASE TABLE');
  });

  test('reads columns with their types', async () => {
    const columns = await client.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      ['insurance', 'provinces'],
    );
    assert.deepEqual(
      columns.rows.map((r) => [r.column_name, r.data_type, r.is_nullable]),
      [
        ['code', 'smallint', 'NO'],
        ['name_fa', 'text', 'NO'],
        ['name_en', 'text', 'NO'],
        ['center_fa', 'text', 'NO'],
      ],
    );
    const provinces = await client.query('SELECT * FROM insurance.provinces WHERE code = 9');
    assert.deepEqual(
      provinces.fields.map((f) => [f.name, f.dataTypeID]),
      [['code', INT2], ['name_fa', TEXT], ['name_en', TEXT], ['center_fa', TEXT]],
    );
    const contributions = await client.query(
      'SELECT id, wage, period, paid_at FROM insurance.contributions ORDER BY id LIMIT 1',
    );
    assert.deepEqual(contributions.fields.map((f) => f.dataTypeID), [INT8, NUMERIC, DATE, TIMESTAMP]);
    const [row] = contributions.rows;
    assert.equal(row.id, '1'); // int8 comes as a string, so that no digit is lost
    assert.match(row.wage, /^[1-9][0-9]*$/);
    assert.ok(row.period instanceof Date);
  });

  test('binds a Persian parameter and returns the text unchanged', async () => {
    const byName = await client.query(
      'SELECT code, name_fa, name_en FROM insurance.provinces WHERE name_fa = $1',
      ['خراسان رضوی'],
    );
    assert.deepEqual(byName.rows, [{ code: 9, name_fa: 'خراسان رضوی', name_en: 'Razavi Khorasan' }]);
    // A named statement: prepared once, executed with new parameters.
    const prepared = { name: 'province_by_code', text: 'SELECT name_fa FROM insurance.provinces WHERE code = $1' };
    assert.deepEqual((await client.query({ ...prepared, values: [23] })).rows, [{ name_fa: 'تهران' }]);
    assert.deepEqual((await client.query({ ...prepared, values: [9] })).rows, [{ name_fa: 'خراسان رضوی' }]);
  });

  test('reads a large result in pages through pg-cursor', async () => {
    const { rows: [{ n }] } = await client.query('SELECT count(*) AS n FROM insurance.contributions');
    const total = Number(n);
    assert.ok(total > 10_000, `${total} rows`);
    const cursor = client.query(new Cursor('SELECT id, wage FROM insurance.contributions ORDER BY id'));
    let seen = 0;
    let pages = 0;
    let last = -1;
    for (let page = await cursor.read(5000); page.length > 0; page = await cursor.read(5000)) {
      pages++;
      for (const { id } of page) {
        assert.ok(Number(id) > last);
        last = Number(id);
      }
      seen += page.length;
    }
    await cursor.close();
    assert.equal(seen, total);
    assert.equal(pages, Math.ceil(total / 5000));
    // The connection is usable after the cursor.
    const after = await client.query('SELECT code FROM insurance.provinces WHERE code = $1', [9]);
    assert.deepEqual(after.rows, [{ code: 9 }]);
  });

  test('a missing table is an error with its SQLSTATE, and the connection survives', async () => {
    await assert.rejects(client.query('SELECT * FROM insurance.missing'), { code: '42P01' });
    assert.deepEqual((await client.query("SELECT 'ok' AS status")).rows, [{ status: 'ok' }]);
  });

  test('an integer literal is an integer, and comes as a number', async () => {
    // PostgreSQL types `2` as integer (int4), which node-postgres turns into a number;
    // a bigint would come as the string '2', and `n + 1` in a dashboard as '21'.
    const result = await client.query('SELECT 2 AS two');
    assert.equal(result.fields[0].dataTypeID, INT4);
    assert.deepEqual(result.rows, [{ two: 2 }]);
  });

  test('tehran sees only Tehran', async () => {
    const tehran = connect('tehran');
    await tehran.connect();
    try {
      const { rows } = await tehran.query('SELECT DISTINCT province_code FROM insurance.contributions');
      assert.deepEqual(rows, [{ province_code: 23 }]);
      const other = await tehran.query(
        'SELECT count(*) AS n FROM insurance.contributions WHERE province_code <> $1',
        [23],
      );
      assert.equal(other.rows[0].n, '0');
    } finally {
      await tehran.end();
    }
  });

  test('a wrong password is refused with 28P01', async () => {
    const wrong = connect('admin', 'nope');
    await assert.rejects(wrong.connect(), { code: '28P01' });
  });
});
