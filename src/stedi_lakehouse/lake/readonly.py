"""`query` is for reading: a statement runs only if Spark's own parser makes it a read.

The statement is parsed by Spark (`EXPLAIN EXTENDED`, which parses and analyses without running
anything) and its parsed plan is checked node by node: the root must be a query, a SHOW, a
DESCRIBE or an EXPLAIN; no node may run a program (script transforms), call Java
(`reflect`, `java_method`) or read files directly (`text.`/path``, `json.`...``). Spark's own
check of direct file reads is also turned off while the statement runs.
"""

import re

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from stedi_lakehouse.errors import ReadOnlyError, first_line

READS = "SELECT, WITH, TABLE, VALUES, SHOW, DESCRIBE and EXPLAIN"
# Root nodes of a parsed read: relational operators, SHOW/DESCRIBE commands and EXPLAIN.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


READ_ROOTS = _words(
    """Project Aggregate Filter Sort GlobalLimit LocalLimit Offset Tail Distinct Deduplicate
    Union Intersect Except Join LateralJoin CTE UnresolvedWith WithCTE SubqueryAlias
    UnresolvedRelation RelationTimeTravel LocalRelation UnresolvedInlineTable OneRowRelation
    Window WithWindowDefinition Generate Sample Pivot Unpivot UnresolvedHaving Range Expand
    RepartitionByExpression Repartition RebalancePartitions UnresolvedTableValuedFunction
    ShowTables ShowTablesExtended ShowNamespaces ShowColumns ShowTableProperties ShowFunctions
    ShowCreateTable ShowPartitions ShowViews ShowCatalogs DescribeRelation DescribeColumn
    DescribeNamespace DescribeFunction ExplainCommand"""
)
FILE_SOURCES = _words("text json csv parquet orc avro binaryfile delta xml jdbc hive libsvm image")
FORBIDDEN_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect", "read_files"})
RUN_SQL_ON_FILES = "spark.sql.runSQLOnFiles"
_NODE = re.compile(r"^[\s:|+\-]*'?([A-Za-z]+)")
_RELATION = re.compile(r"'UnresolvedRelation \[([^,\]]+), ")
_FUNCTION = re.compile(r"'([A-Za-z_]+)\(")
_TABLE_FUNCTION = re.compile(r"'UnresolvedTableValuedFunction \[([^\]]+)\]")


def parsed_plan(spark: SparkSession, sql: str) -> str:
    """Spark's parsed logical plan of `sql` (nothing is run)."""
    try:
        explained = spark.sql(f"EXPLAIN EXTENDED {sql}").collect()[0][0]
    except PySparkException as exc:
        said = first_line(exc)
        raise ReadOnlyError(
            f"query runs {READS} statements only; Spark did not parse this one as one: {said}"
        ) from None
    parsed = explained.split("== Analyzed Logical Plan ==")[0]
    return parsed.replace("== Parsed Logical Plan ==", "").strip()


def check_read_only(spark: SparkSession, sql: str) -> None:
    """Raise ReadOnlyError unless `sql` is one read statement (see the module docstring)."""
    plan = parsed_plan(spark, sql)
    lines = plan.splitlines()
    root = _NODE.match(lines[0]) if lines else None
    if root is None or root.group(1) not in READ_ROOTS:
        kind = root.group(1) if root else "nothing"
        raise ReadOnlyError(f"query runs {READS} statements only, not {kind}")
    for line in lines:
        node = _NODE.match(line)
        if node and node.group(1) == "ScriptTransformation":
            raise ReadOnlyError("query does not run programs (SELECT TRANSFORM ... USING)")
        source = _RELATION.search(line)
        if source and source.group(1).strip("`").lower() in FILE_SOURCES:
            raise ReadOnlyError(
                f"query reads the lake's tables, not files ({source.group(1)}.`...`)"
            )
        called = {name.lower() for name in _FUNCTION.findall(line)}
        called |= {name.strip("`").lower() for name in _TABLE_FUNCTION.findall(line)}
        if forbidden := called & FORBIDDEN_FUNCTIONS:
            raise ReadOnlyError(f"query does not call {', '.join(sorted(forbidden))}")
