// Go's lib/pq against Amar, as Grafana's PostgreSQL data source drives it: the catalog
// through information_schema, column types from rows.ColumnTypes(), bound parameters
// with Persian text, and a large result read by iterating rows and through a cursor
// (DECLARE and FETCH inside a transaction).
//
// lib/pq is Debian's (golang-github-lib-pq-dev, installed by clients/install.sh), built
// in GOPATH mode so that nothing comes from the Go module proxy:
//
//	AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT=PORT GO111MODULE=off GOPATH=/usr/share/gocode \
//	    go test -count=1 -v ./clients/go
package amar

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/lib/pq"
)

func dsn(user, password string) string {
	host := os.Getenv("AMAR_PG_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	port := os.Getenv("AMAR_PG_PORT")
	if port == "" {
		port = "6543"
	}
	return fmt.Sprintf("host=%s port=%s dbname=amar user=%s password=%s sslmode=disable", host, port, user, password)
}

func open(t *testing.T, user, password string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn(user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	return db
}

// texts runs a query whose rows are one text column each.
func texts(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, s := range list {
			found = found || s == w
		}
		if !found {
			return false
		}
	}
	return true
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestConnectsToAPostgreSQL16(t *testing.T) {
	db := open(t, "admin", "admin")
	// Grafana asks for the version when a data source is saved.
	var version int
	if err := db.QueryRow("SELECT current_setting('server_version_num')::int / 100").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 1600 {
		t.Errorf("server_version_num / 100 = %d, want 1600", version)
	}
}

func TestListsSchemasAndTables(t *testing.T) {
	db := open(t, "admin", "admin")
	schemas := texts(t, db, `SELECT schema_name FROM information_schema.schemata
		WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast') ORDER BY schema_name`)
	if !contains(schemas, "amar", "health", "insurance", "pension") || contains(schemas, "pg_catalog") {
		t.Errorf("schemas: %v", schemas)
	}
	tables := texts(t, db, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE quote_ident(table_schema) = $1 ORDER BY 1`, "insurance")
	if !contains(tables, "provinces", "contributions") {
		t.Errorf("tables of insurance: %v", tables)
	}
}

func TestReadsColumnsWithTheirTypes(t *testing.T) {
	db := open(t, "admin", "admin")
	columns := texts(t, db, `SELECT quote_ident(column_name) || ' ' || data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, "insurance", "provinces")
	want := []string{"code smallint", "name_fa text", "name_en text", "center_fa text"}
	if !reflect.DeepEqual(columns, want) {
		t.Errorf("information_schema.columns: %v, want %v", columns, want)
	}

	// Without parameters lib/pq sends a simple query; with them, Parse, Bind and Execute.
	for _, c := range []struct {
		query string
		args  []any
		types []string
	}{
		{"SELECT * FROM insurance.provinces", nil, []string{"INT2", "TEXT", "TEXT", "TEXT"}},
		{"SELECT id, wage, period, paid_at FROM insurance.contributions WHERE id = $1", []any{1},
			[]string{"INT8", "NUMERIC", "DATE", "TIMESTAMP"}},
	} {
		rows, err := db.Query(c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		types, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ct := range types {
			got = append(got, ct.DatabaseTypeName())
		}
		if !reflect.DeepEqual(got, c.types) {
			t.Errorf("%s: column types %v, want %v", c.query, got, c.types)
		}
		if c.args != nil && len(types) > 1 {
			// The type modifier of numeric(14,0) reaches the driver.
			if p, s, ok := types[1].DecimalSize(); !ok || p != 14 || s != 0 {
				t.Errorf("wage: DecimalSize() = %d, %d, %v; want 14, 0, true", p, s, ok)
			}
		}
		rows.Close()
	}
}

func TestBindsPersianTextAndReturnsItUnchanged(t *testing.T) {
	db := open(t, "admin", "admin")
	var code int
	var nameFa, nameEn string
	err := db.QueryRow("SELECT code, name_fa, name_en FROM insurance.provinces WHERE name_fa = $1", "خراسان رضوی").
		Scan(&code, &nameFa, &nameEn)
	if err != nil {
		t.Fatal(err)
	}
	if code != 9 || nameFa != "خراسان رضوی" || nameEn != "Razavi Khorasan" {
		t.Errorf("got %d %q %q", code, nameFa, nameEn)
	}
	// A prepared statement, run twice with an integer parameter.
	stmt, err := db.Prepare("SELECT name_fa FROM insurance.provinces WHERE code = $1")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for code, want := range map[int]string{23: "تهران", 9: "خراسان رضوی"} {
		var got string
		if err := stmt.QueryRow(code).Scan(&got); err != nil || got != want {
			t.Errorf("code %d: %q, %v; want %q", code, got, err, want)
		}
	}
}

func TestReadsALargeResultRowByRow(t *testing.T) {
	db := open(t, "admin", "admin")
	total := count(t, db, "SELECT count(*) FROM insurance.contributions")
	if total <= 10000 {
		t.Fatalf("only %d contributions", total)
	}
	rows, err := db.Query("SELECT id, wage FROM insurance.contributions ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seen, last int64 = 0, -1
	for rows.Next() {
		var id int64
		var wage string
		if err := rows.Scan(&id, &wage); err != nil {
			t.Fatal(err)
		}
		if id <= last {
			t.Fatalf("id %d after %d", id, last)
		}
		last = id
		seen++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != total {
		t.Errorf("read %d rows, count(*) says %d", seen, total)
	}
}

func TestReadsALargeResultInPagesThroughACursor(t *testing.T) {
	db := open(t, "admin", "admin")
	total := count(t, db, "SELECT count(*) FROM insurance.contributions")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("DECLARE contributions_by_id CURSOR FOR SELECT id, wage FROM insurance.contributions ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	var seen, pages, last int64 = 0, 0, -1
	for {
		rows, err := tx.Query("FETCH 5000 FROM contributions_by_id")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for rows.Next() {
			var id int64
			var wage string
			if err := rows.Scan(&id, &wage); err != nil {
				t.Fatal(err)
			}
			if id <= last {
				t.Fatalf("id %d after %d", id, last)
			}
			last = id
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n == 0 {
			break
		}
		seen += n
		pages++
	}
	if _, err := tx.Exec("CLOSE contributions_by_id"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if seen != total || pages != (total+4999)/5000 {
		t.Errorf("read %d rows in %d pages, count(*) says %d", seen, pages, total)
	}
}

func TestErrorsCarryTheirSQLState(t *testing.T) {
	db := open(t, "admin", "admin")
	_, err := db.Query("SELECT * FROM insurance.missing")
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "42P01" {
		t.Errorf("a missing table: %v, want SQLSTATE 42P01", err)
	}
	if count(t, db, "SELECT 1") != 1 {
		t.Error("the connection did not survive the error")
	}
}

func TestTehranSeesOnlyTehran(t *testing.T) {
	db := open(t, "tehran", "tehran")
	provinces := texts(t, db, "SELECT DISTINCT province_code::text FROM insurance.contributions")
	if !reflect.DeepEqual(provinces, []string{"23"}) {
		t.Errorf("tehran's provinces: %v", provinces)
	}
	if n := count(t, db, "SELECT count(*) FROM insurance.contributions WHERE province_code <> $1", 23); n != 0 {
		t.Errorf("tehran reads %d rows of other provinces", n)
	}
}

func TestAWrongPasswordIsRefused(t *testing.T) {
	db, err := sql.Open("postgres", dsn("admin", "nope"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Ping()
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "28P01" {
		t.Errorf("a wrong password: %v, want SQLSTATE 28P01", err)
	}
}
