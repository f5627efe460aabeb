"""Sleep pressure: how much the assistant has to consolidate, shown by `models` and `doctor`."""

from __future__ import annotations

from storage.home import Home
from storage.runs import latest_runs, utcnow
from storage.warehouse import read_table


def sleep_pressure(home: Home) -> dict:
    """New turns since the last sleep, hours since it, and the last gate's perplexity drift."""
    from flows.ingest import new_exchanges

    sleeps = [r for r in latest_runs(home, kind="sleep") if r["status"] == "completed"]
    gates = read_table(home, "gate_results", columns=["ppl_drift", "approved"]).to_pylist()
    last = sleeps[0]["finished_at"] if sleeps else None
    return {
        "new_turns": new_exchanges(home).num_rows,
        "hours_since_sleep": round((utcnow() - last).total_seconds() / 3600, 1) if last else None,
        "last_ppl_drift": gates[-1]["ppl_drift"] if gates else None,
        "sleeps": len(sleeps),
    }


def pressure_line(home: Home) -> str:
    """One line a person can read."""
    p = sleep_pressure(home)
    since = f"{p['hours_since_sleep']} h since the last sleep" if p["hours_since_sleep"] is not None else "never slept"
    drift = f"last perplexity drift {p['last_ppl_drift']:+.1%}" if p["last_ppl_drift"] is not None else "no gate yet"
    return f"sleep pressure: {p['new_turns']} new turn(s), {since}, {drift}"
