"""Moving in and out: CSV exports of eLAS/eLAND in, our own CSV or JSON out.

``sheet`` reads the files, ``importing`` books what they hold, ``export`` writes
everything out again.
"""

from storage.exchange.events_import import EventsReport, import_events, read_events
from storage.exchange.export import COLUMNS, export_rows, neutralised, plain_cell, write_rows
from storage.exchange.formats import code_in_cell, read_source
from storage.exchange.importing import (
    OPENING,
    BalancesReport,
    Resolve,
    TransfersReport,
    code_reader,
    import_balances,
    import_transfers,
)
from storage.exchange.members_import import MembersReport, import_members
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
    "COLUMNS",
    "HEADERS",
    "MEMBER_FIELDS",
    "OPENING",
    "TRANSFER_FIELDS",
    "BalancesReport",
    "EventsReport",
    "Field",
    "ImportError_",
    "Kind",
    "MembersReport",
    "Report",
    "Resolve",
    "Sheet",
    "TransfersReport",
    "code_in_cell",
    "code_reader",
    "control_problem",
    "export_rows",
    "import_balances",
    "import_events",
    "import_members",
    "import_transfers",
    "neutralised",
    "parse_amount",
    "parse_code",
    "parse_date",
    "plain_cell",
    "read_events",
    "read_sheet",
    "read_source",
    "units",
    "write_rows",
]
