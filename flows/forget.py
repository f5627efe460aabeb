"""`slowwave forget`: show what a selector takes back, record the request and its tombstones, rebuild the model
without it (the `forget-rebuild` flow) and, with --purge, erase it from disk.

Prefect is imported only inside `prefect_api` (the flow needs this home's server), so this module stays light.
"""

from __future__ import annotations

import sys
import uuid
from typing import Callable

from storage.errors import SlowwaveError
from storage.forget import Forgotten, Selection, forgotten, requests, select
from storage.home import Home

Say = Callable[[str], None]
READY_TO_PURGE = ("rebuilt", "nothing-to-rebuild")


class ForgetError(SlowwaveError):
    """A forget that cannot go on: nothing matched, already forgotten, not confirmed, not rebuilt."""


def preview_lines(sel: Selection, home: Home, gone: Forgotten) -> list[str]:
    """What will be forgotten, for the person to confirm: the pairs with their words, where they came from, and
    everything that learned them."""
    from storage import registry

    c = sel.counts()
    current = registry.current_name(home)
    lines = [f"forget {sel.selector}: {c['pairs']} pair(s), {c['exchanges']} exchange(s), {c['messages']} message(s), "
             f"{c['replay_entries']} replay-buffer entr{'y' if c['replay_entries'] == 1 else 'ies'}"]
    for p in sel.pairs.to_pylist():
        mark = " (already forgotten)" if p["pair_id"] in gone.pairs else ""
        lines.append(f"  pair {p['pair_id']} [{p['status']}, {p['fact_type']}]{mark}: {p['question']} -> {p['answer']}")
    for e in sel.exchanges.to_pylist():
        lines.append(f"  exchange {e['exchange_id']}: session {e['session_id']} turn {e['turn']} "
                     f"({e['source_file']}:{e['user_line']})")
    lines.append(f"  learned by {c['runs']} training run(s) and {c['adapters']} adapter(s)")
    held = [v + (" (current)" if v == current else "") for v in sel.versions]
    lines.append(f"  held by model version(s): {', '.join(held) or 'none'}")
    return lines


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ForgetError("nothing was forgotten: add --yes to confirm (run without it at a terminal to be asked)")
    answer = input("forget all of this? it cannot be undone [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ForgetError("nothing was forgotten (not confirmed)")


def _already(sel: Selection, gone: Forgotten) -> str | None:
    """The request that already forgot everything `sel` matches, or None when something in it is new."""
    ids = sel.pairs["pair_id"].to_pylist() + sel.exchanges["exchange_id"].to_pylist()
    if ids and all(i in gone.pairs or i in gone.exchanges for i in ids):
        return gone.by_item[ids[0]]
    return None


def run_forget(home: Home, args, say: Say) -> int:
    """The whole command, holding the home's lock: select, confirm, record, rebuild, purge."""
    from storage.lock import command_line, home_lock

    with home_lock(home.root, command_line()):
        from storage.atomic import clean_stale_temp

        clean_stale_temp(home.root)  # the temp part a purge killed mid-write left (the next run writes it again)
        if args.pending:
            todo = [rid for rid, r in requests(home).items()
                    if r["status"] in ("requested", "not-promoted") or (args.purge and r["status"] in READY_TO_PURGE)]
            if not todo:
                raise ForgetError("no forget request is waiting for a rebuild" + (" or a purge" if args.purge else ""))
        else:
            todo = [_request(home, args, say)]
        return _finish(home, todo, args.purge and not args.no_rebuild, args.no_rebuild, say)


def _request(home: Home, args, say: Say) -> str:
    from storage.ids import new_run_id
    from storage.forget import record_request

    sel = select(home, pair=args.pair_id, search=args.search, exchange=args.exchange, session=args.session)
    gone = forgotten(home)
    before = _already(sel, gone)
    if before is not None:
        state = requests(home).get(before, {}).get("status", "requested")
        raise ForgetError(f"{sel.selector} was already forgotten by request {before} ({state}); "
                          + ("`slowwave forget --pending --purge` erases it" if state in READY_TO_PURGE
                             else "nothing more to do" if state == "purged" else "`slowwave forget --pending` "
                             "finishes it"))
    lines = preview_lines(sel, home, gone)
    print("\n".join(lines))
    _confirm(args.yes)
    request_id = "fr_" + uuid.uuid4().hex[:12]
    record_request(home, request_id, new_run_id(), sel, args.reason)
    say(f"forget request {request_id}: {sel.counts()['pairs']} pair(s) and their words are tombstoned; later sleeps, "
        "replay and dreams skip them")
    return request_id


def _finish(home: Home, request_ids: list[str], purge: bool, no_rebuild: bool, say: Say) -> int:
    """Rebuild the recorded requests that wait for it, in one consolidation (unless told not to), then purge each
    when asked and its rebuild allows."""
    # A request whose rebuild was not promoted is tried again (its settings may have changed since).
    waiting = [rid for rid in request_ids if requests(home)[rid]["status"] in ("requested", "not-promoted")]
    if no_rebuild:
        say("not rebuilt yet: `slowwave forget --pending` rebuilds every waiting request in one consolidation")
        return 0
    if waiting:
        from flows.prefect_env import prefect_api

        with prefect_api(home, say):
            from flows.forget_rebuild import forget_rebuild

            outcome = forget_rebuild(home_dir=str(home.root), request_ids=waiting)
        print(outcome_line(", ".join(waiting), outcome))
    code = 0
    for rid in request_ids:
        state = requests(home)[rid]
        if state["status"] == "not-promoted":
            say(f"slowwave: {rid}: the rebuild was not promoted, so nothing can be purged yet; the forgotten pairs "
                "stay tombstoned (never learned again); see the forget-rebuild run's artifact")
            code = 2
        elif purge and state["status"] in READY_TO_PURGE:
            print(purge_request(home, rid, say))
        elif purge and state["status"] == "purged":
            print(f"{rid}: already purged")
    return code


def outcome_line(request_id: str, outcome: dict) -> str:
    if outcome["status"] == "nothing-to-rebuild":
        return f"{request_id}: no model version in use holds what was forgotten; nothing to rebuild"
    if outcome["status"] == "rebuilt":
        before, after = outcome.get("recall_before"), outcome.get("recall_after")
        recall = f", kept facts' recall {before:.2f} -> {after:.2f}" if before is not None and after is not None else ""
        inferred = outcome.get("inferred", []) + outcome.get("prior", [])
        also = (f"; still inferred from what was kept (or known before): {', '.join(inferred)} — forget the facts it "
                "follows from to remove it" if inferred else "")
        return (f"{request_id}: rebuilt {outcome.get('version')} without it (current; replaces "
                f"{outcome.get('replaced')}); forgotten values recalled from learned words: "
                f"{len(outcome.get('recalled', []))} (of {outcome.get('asked', 0)} questions){recall}{also}")
    return f"{request_id}: rebuild not promoted: {'; '.join(outcome.get('reasons', []))}"


def purge_request(home: Home, request_id: str, say: Say) -> str:
    """Erase a rebuilt request's words and the weights that learned them; record the request as purged."""
    import json

    from storage import registry
    from storage.catalog import connect
    from storage.forget import purge, request_items, usage, write_request_status
    from storage.ids import new_run_id

    state = requests(home)[request_id]
    pairs = request_items(home, request_id, "pair")
    con = connect(home)
    try:
        _, adapters, versions = usage(con, pairs)
    finally:
        con.close()
    detail = json.loads(state["detail_json"])
    # What the rebuild found, too: a kill during an earlier purge may already have removed the rows usage() reads.
    versions = sorted(set(versions) | set(detail.get("holding", [])))
    adapters = sorted(set(adapters) | set(detail.get("adapters", [])))
    current = registry.current_name(home)
    if current in versions:
        raise ForgetError(f"{request_id}: current ({current}) still holds what was forgotten; rebuild first "
                          "(`slowwave forget --pending`)")
    gone = Forgotten(frozenset(pairs), frozenset(request_items(home, request_id, "exchange")),
                     frozenset(request_items(home, request_id, "message")))
    run_id = new_run_id()
    report = purge(home, request_id, run_id, versions, adapters, gone, say=say)
    write_request_status(home, request_id, run_id, state["selector"], None, "purged", json.loads(state["counts_json"]),
                         {**detail, "purge": report.as_dict()})
    removed = sum(report.rows_removed.values())
    return (f"{request_id}: purged — weights erased of {len(versions)} version(s) ({', '.join(versions) or 'none'}) "
            f"and {len(adapters)} adapter(s); {removed} row(s) removed, "
            f"{sum(report.cells_masked.values())} text(s) masked, {report.files_rewritten} file(s) rewritten, "
            f"{report.prefect_cells} Prefect record(s) masked")
