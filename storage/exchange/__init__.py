"""Moving in and out: CSV exports of eLAS/eLAND in, our own CSV or JSON out.

``sheet`` reads the files, ``importing`` books what they hold, ``export`` writes
everything out again.
"""

from storage.exchange.export import export_rows, write_rows
from storage.exchange.formats import code_in_cell, read_source
from storage.exchange.importing import (
    OPENING,
    BalancesReport,
    import_balances,
    import_members,
    import_transfers,
)
from storage.exchange.sheet import (
    BALANCE_FIELDS,
    HEADERS,
    MEMBER_FIELDS,
    TRANSFER_FIELDS,
    Field,
    ImportError_,
    Kind,
    Report,
    Sheet,
    control_problem,
    parse_amount,
    parse_code,
    parse_date,
    read_sheet,
    units,
)

__all__ = [
    "BALANCE_FIELDS",
    "HEADERS",
    "MEMBER_FIELDS",
    "OPENING",
    "TRANSFER_FIELDS",
    "BalancesReport",
    "Field",
    "ImportError_",
    "Kind",
    "Report",
    "Sheet",
    "code_in_cell",
    "control_problem",
    "export_rows",
    "import_balances",
    "import_members",
    "import_transfers",
    "parse_amount",
    "parse_code",
    "parse_date",
    "read_sheet",
    "read_source",
    "units",
    "write_rows",
]
