"""harness.py -- what the Python oracle tests share: a tally of checks that
ends in the "N passed, N failed" line CI reads, and a hard stop (a failure,
never a skip) when a setup step is missing.
"""
import sys

_tally = {"passed": 0, "failed": 0}


def report(name, ok, detail=""):
    """Counts one check; a failure is printed with its detail."""
    if ok:
        _tally["passed"] += 1
    else:
        _tally["failed"] += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}", file=sys.stderr)


def summary():
    """Prints the closing line and returns the exit status."""
    print(f"{_tally['passed']} passed, {_tally['failed']} failed")
    return 1 if _tally["failed"] else 0


def stop(reason):
    """Ends the test as one failed check: for a missing module or tool."""
    print(f"FAIL {reason}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)
