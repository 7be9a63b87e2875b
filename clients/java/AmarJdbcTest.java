// pgjdbc against Amar, as DBeaver and Metabase use it: DatabaseMetaData (schemas,
// tables, columns, primary keys), PreparedStatement with bound parameters, and a
// fetch size that streams a large result through a portal.
//
// Run: java -cp /usr/share/java/postgresql.jar:build AmarJdbcTest HOST PORT
// Exits 0 when every check passes; prints the failing check and exits 1 otherwise.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class AmarJdbcTest {
    private static int checks = 0;

    private static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
        System.out.println("ok " + checks + " - " + what);
    }

    private static Connection connect(String host, String port, String user, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/amar", props);
    }

    public static void main(String[] args) throws Exception {
        String host = args.length > 0 ? args[0] : "127.0.0.1";
        String port = args.length > 1 ? args[1] : "6543";
        try (Connection conn = connect(host, port, "admin", "admin")) {
            metadata(conn);
            prepared(conn);
            fetchSize(conn);
            errors(conn);
            indicators(conn);
            whatToolsSend(conn);
        }
        try (Connection conn = connect(host, port, "tehran", "tehran")) {
            restricted(conn);
        }
        try (Connection conn = connect(host, port, "auditor", "auditor")) {
            auditor(conn);
        }
        try {
            connect(host, port, "admin", "wrong").close();
            check(false, "a wrong password is refused");
        } catch (SQLException e) {
            check("28P01".equals(e.getSQLState()), "a wrong password is refused with 28P01 (got " + e.getSQLState() + ")");
        }
        System.out.println("all " + checks + " JDBC checks passed");
    }

    /** A Metabase dashboard of the evaluation: provinces that miss a norm, by rank. */
    static void indicators(Connection conn) throws SQLException {
        List<String> views = new ArrayList<>();
        try (ResultSet rs = conn.getMetaData().getTables(null, "indicators", "%", new String[] {"VIEW"})) {
            while (rs.next()) {
                views.add(rs.getString("TABLE_NAME"));
            }
        }
        check(views.contains("active_insured") && views.size() >= 8, "getTables lists the indicator views " + views);
        try (PreparedStatement st = conn.prepareStatement(
                "SELECT unit, indicator, value, status, unit_rank FROM amar.indicator_status "
                + "WHERE status <> ? ORDER BY unit_rank, indicator")) {
            st.setString(1, "on target");
            try (ResultSet rs = st.executeQuery()) {
                long lastRank = 0;
                int n = 0;
                while (rs.next()) {
                    long rank = rs.getLong("unit_rank");
                    check(rank >= lastRank, "ranks ascend");
                    String status = rs.getString("status");
                    check(status.equals("warning") || status.equals("off target"), "status " + status);
                    rs.getDouble("value");
                    lastRank = rank;
                    n++;
                }
                check(n > 0, "some province misses a norm");
            }
        }
    }

    static List<String> allTables(DatabaseMetaData md) throws SQLException {
        List<String> tables = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
            while (rs.next()) {
                tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
            }
        }
        return tables;
    }

    /** As the demo's Tehran analyst: the province's rows, national ids masked, no query log. */
    static void restricted(Connection conn) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        List<String> tables = allTables(md);
        check(tables.contains("insurance.contributions"), "tehran's getTables lists insurance.contributions " + tables);
        check(!tables.contains("amar.query_log"), "tehran's getTables hides amar.query_log " + tables);
        List<String> provinces = new ArrayList<>();
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT DISTINCT province_code FROM insurance.contributions")) {
            while (rs.next()) {
                provinces.add(rs.getString(1));
            }
        }
        check(provinces.size() == 1 && provinces.get(0).equals("23"), "tehran reads Tehran's contributions only " + provinces);
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT national_id FROM insurance.insured_persons WHERE province_code = ? LIMIT 5")) {
            ps.setInt(1, 23);
            try (ResultSet rs = ps.executeQuery()) {
                int n = 0;
                while (rs.next()) {
                    n++;
                    check(rs.getString(1).length() == 64, "national ids come masked (" + rs.getString(1) + ")");
                }
                check(n == 5, "the masked query returns rows");
            }
        }
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT * FROM amar.query_log");
            check(false, "tehran may not read the query log");
        } catch (SQLException e) {
            check("42501".equals(e.getSQLState()), "the query log is refused with 42501 (got " + e.getSQLState() + ")");
        }
    }

    /** As the demo's auditor: the query log only. */
    static void auditor(Connection conn) throws SQLException {
        List<String> tables = allTables(conn.getMetaData());
        check(tables.stream().noneMatch(t -> t.startsWith("insurance.") || t.startsWith("pension.") || t.startsWith("health.")),
                "the auditor's getTables shows no department's table " + tables);
        check(tables.contains("amar.query_log"), "the auditor's getTables lists amar.query_log " + tables);
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT count(*) FROM amar.query_log WHERE user_name = 'tehran'")) {
            rs.next();
            check(rs.getLong(1) > 0, "the auditor sees tehran's statements in the query log");
        }
    }

    static void metadata(Connection conn) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        check(md.getDatabaseProductName().equals("PostgreSQL"), "product name is PostgreSQL");
        check(md.getDatabaseMajorVersion() >= 12, "server version parses (" + md.getDatabaseProductVersion() + ")");

        List<String> schemas = new ArrayList<>();
        try (ResultSet rs = md.getSchemas()) {
            while (rs.next()) {
                schemas.add(rs.getString("TABLE_SCHEM"));
            }
        }
        check(schemas.contains("insurance") && schemas.contains("pension") && schemas.contains("health"),
                "getSchemas lists the demo's departments " + schemas);

        List<String> tables = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, "insurance", "%", new String[] {"TABLE"})) {
            while (rs.next()) {
                tables.add(rs.getString("TABLE_NAME"));
            }
        }
        check(tables.contains("contributions") && tables.contains("provinces"), "getTables lists insurance tables " + tables);

        List<String> columns = new ArrayList<>();
        int wageType = 0;
        int wagePrecision = 0;
        int periodType = 0;
        try (ResultSet rs = md.getColumns(null, "insurance", "contributions", "%")) {
            while (rs.next()) {
                String name = rs.getString("COLUMN_NAME");
                columns.add(name);
                if (name.equals("wage")) {
                    wageType = rs.getInt("DATA_TYPE");
                    wagePrecision = rs.getInt("COLUMN_SIZE");
                }
                if (name.equals("period")) {
                    periodType = rs.getInt("DATA_TYPE");
                }
            }
        }
        check(columns.size() == 12 && columns.get(0).equals("id") && columns.contains("province_code"),
                "getColumns lists contributions' columns in order " + columns);
        check(wageType == Types.NUMERIC, "wage is NUMERIC (" + wageType + ")");
        check(wagePrecision == 14, "wage has precision 14 (" + wagePrecision + ")");
        check(periodType == Types.DATE, "period is DATE (" + periodType + ")");

        List<String> keys = new ArrayList<>();
        String keyName = null;
        try (ResultSet rs = md.getPrimaryKeys(null, "insurance", "contributions")) {
            while (rs.next()) {
                keys.add(rs.getString("COLUMN_NAME"));
                keyName = rs.getString("PK_NAME");
            }
        }
        check(keys.size() == 1 && keys.get(0).equals("id"), "getPrimaryKeys finds contributions.id " + keys);
        check("contributions_pkey".equals(keyName), "the key is named contributions_pkey (" + keyName + ")");
    }

    static void prepared(Connection conn) throws SQLException {
        String sql = "SELECT count(*) AS n, sum(wage) AS wages FROM insurance.contributions WHERE province_code = ? AND period >= ?";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setShort(1, (short) 23);
            ps.setDate(2, Date.valueOf("2024-03-20"));
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "the prepared aggregate returns a row");
                long n = rs.getLong("n");
                BigDecimal wages = rs.getBigDecimal("wages");
                check(n > 0 && wages.signum() > 0, "Tehran has contributions since 1403 (" + n + ")");
                ResultSetMetaData meta = rs.getMetaData();
                check(meta.getColumnName(1).equals("n") && meta.getColumnType(1) == Types.BIGINT, "count is a bigint named n");
            }
            // Re-execute with other values: pgjdbc switches to a server-side prepared
            // statement after a few runs.
            for (int i = 0; i < 6; i++) {
                ps.setShort(1, (short) (i + 1));
                ps.setDate(2, Date.valueOf("2023-03-21"));
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) > 0, "re-executed with province " + (i + 1));
                }
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT name_fa FROM insurance.provinces WHERE name_en = ?")) {
            ps.setString(1, "Tehran");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next() && rs.getString(1).equals("تهران"), "Persian text comes back intact");
            }
        }
    }

    static void fetchSize(Connection conn) throws SQLException {
        conn.setAutoCommit(false);
        long total;
        try (Statement st = conn.createStatement()) {
            try (ResultSet rs = st.executeQuery("SELECT count(*) FROM insurance.contributions")) {
                rs.next();
                total = rs.getLong(1);
            }
        }
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(1000);
            long rows = 0;
            long lastId = -1;
            boolean ordered = true;
            try (ResultSet rs = st.executeQuery("SELECT id, wage FROM insurance.contributions ORDER BY id")) {
                while (rs.next()) {
                    long id = rs.getLong(1);
                    if (id <= lastId) {
                        ordered = false;
                    }
                    lastId = id;
                    rows++;
                }
            }
            check(rows == total, "fetch size 1000 streams every row (" + rows + " of " + total + ")");
            check(ordered, "rows stay in order across fetches");
        }
        conn.commit();
        conn.setAutoCommit(true);
    }

    /** What DBeaver, Metabase and other pgjdbc tools call beyond the basics (issue 25). */
    static void whatToolsSend(Connection conn) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        // Foreign keys: Amar's sources declare none to PostgreSQL's catalog, so the
        // answer is empty, but it must be an answer (DBeaver's ER diagram asks).
        int imported = 0;
        try (ResultSet rs = md.getImportedKeys(null, "insurance", "contributions")) {
            check(rs.getMetaData().getColumnCount() >= 14, "getImportedKeys has JDBC's columns");
            while (rs.next()) {
                imported++;
            }
        }
        check(imported >= 0, "getImportedKeys answers");
        try (ResultSet rs = md.getExportedKeys(null, "insurance", "provinces")) {
            while (rs.next()) {
                check(rs.getString("PKTABLE_NAME").equals("provinces"), "exported keys are of provinces");
            }
        }
        List<String> typeNames = new ArrayList<>();
        try (ResultSet rs = md.getTypeInfo()) {
            while (rs.next()) {
                typeNames.add(rs.getString("TYPE_NAME"));
            }
        }
        check(typeNames.contains("int4") && typeNames.contains("numeric") && typeNames.contains("text")
                && typeNames.contains("timestamptz"), "getTypeInfo lists PostgreSQL's types (" + typeNames.size() + ")");
        // A parameter whose type the client leaves to the server (setString sends
        // varchar; setObject with no type sends unspecified) in the select list.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?, length(?)")) {
            ps.setString(1, "تهران");
            ps.setString(2, "abc");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next() && rs.getString(1).equals("تهران") && rs.getInt(2) == 3,
                        "parameters in the select list come back typed text");
            }
        }
        // A double compared with a numeric column compares as a double (PostgreSQL's rule).
        try (PreparedStatement ps = conn.prepareStatement("SELECT count(*) FROM insurance.contributions WHERE wage > ?")) {
            ps.setDouble(1, 0.5);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next() && rs.getLong(1) > 0, "a double parameter compares with a numeric column");
            }
        }
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT 1 AS one, 3000000000 AS big, current_setting('server_version_num') AS v")) {
            rs.next();
            check(rs.getObject(1) instanceof Integer, "an integer literal is an Integer (" + rs.getObject(1).getClass() + ")");
            check(rs.getObject(2) instanceof Long, "a literal beyond int4 is a Long");
            check(rs.getString(3).equals("160004"), "current_setting reads server_version_num");
        }
    }

    static void errors(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.executeQuery("SELECT * FROM insurance.nothing_here");
            check(false, "a missing table is an error");
        } catch (SQLException e) {
            check("42P01".equals(e.getSQLState()), "a missing table is 42P01 (" + e.getSQLState() + ")");
        }
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            check(rs.next() && rs.getInt(1) == 1, "the connection works after an error");
        }
    }
}
