"""The `slowwave` command: parse, load config, call a flow; user errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from pathlib import Path

from storage.errors import InputError, SlowwaveError
from storage.home import Home


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (like Ctrl-C), so locks, temp files and the server are cleaned up."""

    signal = int(signal.SIGTERM)


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _clean_stale(home: Home) -> None:
    """Remove the temp parts a killed writer left in the home (call it holding the home's lock)."""
    from storage.atomic import clean_stale_temp

    removed = clean_stale_temp(home.root)
    if removed:
        names = ", ".join(str(p.relative_to(home.root)) for p in removed[:3]) + (" …" if len(removed) > 3 else "")
        _say(f"removed {len(removed)} temporary part(s) a killed writer left in {home.root}: {names}")


def cmd_ingest(args, home: Home) -> int:
    from flows.config import load_settings
    from flows.ingest import ingest_paths
    from storage.lock import command_line, home_lock

    settings = load_settings(home.config_file)
    with home_lock(home.root, command_line()):  # ingest_paths re-enters it
        _clean_stale(home)
        report = ingest_paths(home, [Path(p) for p in args.paths], settings.ingest, say=_say)
    print(report.line())
    if report.nothing_readable:
        print("slowwave: error: nothing could be read from the given files (see the quarantine reasons above)",
              file=sys.stderr)
        return 1
    return 0


def cmd_sleep(args, home: Home) -> int:
    from flows.prefect_env import prefect_api
    from storage.lock import command_line, home_lock

    # The lock first: a second sleep is refused before it starts a server or creates a flow run.
    with home_lock(home.root, command_line()), prefect_api(home, _say):
        _clean_stale(home)
        from flows.progress import shown
        from flows.report import summary_lines
        from flows.sleep import sleep_or_cancelled

        with shown(sys.stderr):
            result, cancelled = sleep_or_cancelled(home, args.depth, dry_run=args.dry_run)
    if cancelled:
        _say(f"slowwave: sleep cancelled: {cancelled}")
        return 128 + signal_number(cancelled)
    print("\n".join(summary_lines(result)))
    if args.dry_run and result.status == "dry-run":
        from flows.config import load_settings
        from flows.preview import dry_run_lines

        print("\n".join(dry_run_lines(home, result.run_id, load_settings(home.config_file).firewall)))
    return 0


def signal_number(message: str) -> int:
    """The number of the signal a cancel message names (SIGTERM when it names none)."""
    import re

    found = re.search(r"\b(SIG[A-Z]+)\b", message)
    return int(getattr(signal, found.group(1), signal.SIGTERM)) if found else int(signal.SIGTERM)


def cmd_eval(args, home: Home) -> int:
    import json

    from flows.prefect_env import configure, prefect_api
    from storage.atomic import write_text_atomic

    if args.flow:  # a Prefect flow run: the metrics and answers also land as artifacts in the UI
        with prefect_api(home.ensure(), _say):  # before Prefect is imported: it must see this home's server
            from flows.evaluation import eval_models

            report = eval_models(home_dir=str(home.root), probes=args.probes, versions=args.model)
    else:
        configure(home.ensure())
        from flows.evaluation import run_evaluation

        report = run_evaluation(home, Path(args.probes), args.model, say=_say)
    from flows.evaluation import report_lines

    print("\n".join(report_lines(report, verbose=args.verbose)))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"json: {args.json}")
    return 0


def cmd_model(args, home: Home) -> int:
    from flows.config import load_settings
    from storage.ids import new_run_id
    from tasks.model.pull import ensure_model

    settings = load_settings(home.config_file)
    version = ensure_model(home, settings.model, new_run_id(), say=_say)
    print(f"current model: {version.name} ({version.manifest.base}) at {version.path}")
    return 0


def cmd_models(args, home: Home) -> int:
    from flows.doctor import model_problems
    from flows.pressure import pressure_line
    from storage import registry

    current = registry.current_name(home)
    rows = registry.versions(home)
    print(pressure_line(home))
    if not rows and current is None:
        print(f"no model versions in {home.models} yet (run `slowwave model pull`)")
        return 0
    print(f"{'':2}{'version':8} {'parent':8} {'adapter':22} {'created':20} {'gate':36} base")
    for v in rows:
        m = v.manifest
        mark = "* " if v.name == current else "  "
        g = m.gate or {}
        gate = (f"ratio {g['benchmark_ratio']:.2f}, ppl {g['ppl_drift']:+.1%}, recall {g.get('recall_post')}"
                if g else "-")
        if m.purged:
            gate = f"purged ({m.purged.get('request_id')})"
        print(f"{mark}{v.name:8} {m.parent or '-':8} {m.adapter_id or '-':22} "
              f"{m.created_at.isoformat()[:19]:20} {gate:36} {m.base}")
    problems = model_problems(home, rows, hash_all=False)  # hashing every version's weights is doctor's job
    for line in problems:
        print(f"problem: {line}")
    return 1 if problems else 0


def cmd_rollback(args, home: Home) -> int:
    from storage import registry
    from storage.errors import ModelError
    from storage.ids import new_run_id
    from storage.lock import command_line, home_lock

    with home_lock(home.root, command_line()):  # read and switch `current` under one lock: no lost update
        _clean_stale(home)
        current = registry.current_name(home)
        if current is None:
            raise ModelError(f"no model versions in {home.models} yet; nothing to roll back")
        target = args.version or registry.get(home, current).manifest.parent
        if target is None:
            raise ModelError(f"{current} is the base version and has no parent; name a version to switch to")
        chosen = registry.get(home, target)
        if chosen.manifest.purged:
            raise ModelError(registry.purged_message(target, chosen.manifest.purged) + "; it cannot be rolled back "
                             "to (`slowwave models` lists the versions that can)")
        registry.verify_folder(chosen.path)  # never point `current` at a damaged version
        reason = args.reason or f"rollback from {current} by hand"
        registry.set_current(home, target, run_id=new_run_id(), action="rollback", reason=reason)
    print(f"current: {current} -> {target} ({reason})")
    return 0


def cmd_lineage(args, home: Home) -> int:
    from flows.lineage_report import lineage_report

    print(lineage_report(home, pair=args.pair_id, model=args.model, exchange=args.exchange, search=args.search,
                         fmt=args.format, out=args.out), end="")
    return 0


def cmd_forget(args, home: Home) -> int:
    from flows.forget import run_forget

    home.ensure()
    if args.pending and any(v is not None for v in (args.pair_id, args.search, args.exchange, args.session)):
        raise SystemExit("slowwave forget: error: --pending takes no selector")
    return run_forget(home, args, say=_say)


def cmd_doctor(args, home: Home) -> int:
    from flows.doctor import doctor_lines

    lines = doctor_lines(home)
    for line in lines:
        print(line)
    return 1 if any(line.startswith("problem:") for line in lines) else 0


def cmd_demo(args, home: Home) -> int:
    from flows.demo import demo_home, run_demo

    code, cancelled = run_demo(demo_home(home if args.home_given else None), say=_say)
    if cancelled:
        _say(f"slowwave: demo cancelled: {cancelled}")
        return 128 + signal_number(cancelled)
    return code


def cmd_schedule(args, home: Home) -> int:
    from flows.config import load_settings
    from flows.prefect_env import prefect_api

    if args.all_tenants:
        return _schedule_all_tenants(args)
    cfg = _schedule_config(load_settings(home.config_file), args)
    with prefect_api(home, _say) as api:
        from flows.nightly import local_timezone, serve_nightly

        _say(f"serving the nightly sleep of {home.root}: cron '{cfg.cron}' in {cfg.timezone or local_timezone()}, "
             f"Prefect API {api}; Ctrl-C stops (the schedule pauses until served again)")
        serve_nightly(str(home.root), cfg)
    return 0


def _schedule_config(settings, args):
    """The `[schedule]` settings with the command line's --cron and --timezone over them."""
    return settings.schedule.model_copy(update={k: v for k, v in
                                                {"cron": args.cron, "timezone": args.timezone}.items() if v})


def _schedule_all_tenants(args) -> int:
    from flows.config import load_settings
    from flows.prefect_env import prefect_api
    from storage.tenants import list_tenants, root_dir

    if args.tenant or args.home:
        raise InputError("schedule --all-tenants serves every tenant of $SLOWWAVE_ROOT: leave out --home and --tenant")
    root = Home(root_dir())
    settings = load_settings(root.config_file)
    cfg = _schedule_config(settings, args)
    with prefect_api(root.ensure(), _say) as api:
        from flows.nightly import local_timezone, serve_all_tenants

        _say(f"serving the nightly fan-out over {len(list_tenants(root.root))} tenant(s) of {root.root}: cron "
             f"'{cfg.cron}' in {cfg.timezone or local_timezone()}, and {settings.tenants.deployment} for their "
             f"sleeps; Prefect API {api}; Ctrl-C stops")
        serve_all_tenants(str(root.root), cfg, settings.tenants.deployment)
    return 0


def cmd_tenants(args, home: Home) -> int:
    from rich.console import Console
    from rich.table import Table

    from flows.pressure import sleep_pressure
    from flows.tenancy import pending_files
    from storage import registry
    from storage.runs import latest_runs
    from storage.tenants import list_tenants, root_dir, tenant_home

    root = root_dir()
    names = list_tenants(root)
    if not names:
        print(f"no tenants under {root / 'tenants'} yet (`slowwave --tenant NAME ingest PATH` makes one)")
        return 0
    table = Table(title=f"tenants of {root}")
    for col in ("tenant", "current", "last sleep", "pressure", "pending"):
        table.add_column(col)
    for name in names:
        t = tenant_home(name, root)
        runs = latest_runs(t, kind="sleep")
        last = f"{runs[0]['status']} {runs[0]['finished_at']:%Y-%m-%d %H:%M}" if runs else "never"
        p = sleep_pressure(t)
        since = f"{p['hours_since_sleep']} h since" if p["hours_since_sleep"] is not None else "never slept"
        drift = f", drift {p['last_ppl_drift']:+.1%}" if p["last_ppl_drift"] is not None else ""
        table.add_row(name, registry.current_name(t) or "-", last, since + drift,
                      f"{p['new_turns']} turn(s), {pending_files(t)} inbox file(s)")
    Console(width=140).print(table)
    return 0


def cmd_chat(args, home: Home) -> int:
    from flows.chat import run_chat
    from flows.config import load_settings
    from flows.wake.engine import Engine, ensure_current
    from flows.wake.sleeper import Sleeper

    settings = load_settings(home.config_file)
    ensure_current(home, settings.model, say=_say)
    engine = Engine(home, settings.wake, say=_say).start()
    try:
        return run_chat(home, engine, Sleeper(home, None, say=_say), say=_say)
    finally:
        engine.close()


def cmd_serve(args, home: Home) -> int:
    from flows.config import load_settings
    from flows.serve import serve

    return serve(home, load_settings(home.config_file), host=args.host, port=args.port, say=_say)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="slowwave", description="Nightly sleep for a local assistant: "
                                "turn conversation logs into memory in the model's weights.")
    p.add_argument("--home", help="slowwave home folder (default: $SLOWWAVE_HOME or ~/.slowwave)")
    p.add_argument("--tenant", metavar="NAME", help="the home of tenant NAME: $SLOWWAVE_ROOT/tenants/NAME (default "
                   "root ~/.slowwave; env SLOWWAVE_TENANT)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("ingest", help="read session logs (*.jsonl files or folders) into the warehouse")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.set_defaults(func=cmd_ingest)
    s = sub.add_parser("sleep", help="run one sleep cycle as a Prefect flow")
    s.add_argument("--depth", choices=["light", "deep", "auto"], default="auto")
    s.add_argument("--dry-run", action="store_true", help="ingest through mixing only and print what tonight "
                   "would learn (pairs, rejections by reason, the mix); nothing is trained or promoted")
    s.set_defaults(func=cmd_sleep)
    s = sub.add_parser("eval", help="answer a probe set with a model version and score recall, precision, guards")
    s.add_argument("--probes", required=True, metavar="FILE", help="probe set (JSONL: id, kind, question, "
                   "expected, forbidden)")
    s.add_argument("--model", action="append", metavar="V", help="model version, e.g. v0000 (default: current; "
                   "repeat to compare versions)")
    s.add_argument("--json", metavar="OUT", help="also write the metrics and every answer to this JSON file")
    s.add_argument("--verbose", "-v", action="store_true", help="print every probe's answer and verdict")
    s.add_argument("--flow", action="store_true", help="run as a Prefect flow (artifacts in the UI)")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("model", help="manage the base model")
    s.add_argument("action", choices=["pull"], help="pull: fetch, verify, convert and register the base model")
    s.set_defaults(func=cmd_model)
    s = sub.add_parser("models", help="list model versions and which is current")
    s.set_defaults(func=cmd_models)
    s = sub.add_parser("rollback", help="switch `current` back to a version (default: its parent)")
    s.add_argument("version", nargs="?", help="version to switch to, e.g. v0003 (default: the current one's parent)")
    s.add_argument("--reason", help="why (recorded in model_events)")
    s.set_defaults(func=cmd_rollback)
    s = sub.add_parser("lineage", help="trace a pair, an exchange, words or a model version through the warehouse")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("pair_id", nargs="?", metavar="PAIR_ID", help="a pair id or a unique prefix of one: its source "
                   "line, scores, firewall verdict, replays, training runs, gate results and model versions")
    g.add_argument("--model", metavar="V", help="every pair in version V's ancestry, with counts per run "
                   "('current' for the current one)")
    g.add_argument("--exchange", metavar="ID", help="an exchange (id or unique prefix) and every pair found in it")
    g.add_argument("--search", metavar="TEXT", help="pairs whose question, answer or source words contain every word")
    s.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    s.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout (needed for parquet)")
    s.set_defaults(func=cmd_lineage)
    s = sub.add_parser("forget", help="take back what was said: show what a selector matches, tombstone it, rebuild "
                       "the model without it, and (--purge) erase it from disk")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("pair_id", nargs="?", metavar="PAIR_ID", help="a pair id or a unique prefix: the pair and the "
                   "words it came from (and any other pair found only in them)")
    g.add_argument("--search", metavar="WORDS", help="every pair whose question, answer or source words hold every "
                   "word (the words themselves are not kept)")
    g.add_argument("--exchange", metavar="ID", help="an exchange (id or unique prefix) and every pair found in it")
    g.add_argument("--session", metavar="ID", help="a whole session: every message of it and every pair found in it")
    g.add_argument("--pending", action="store_true", help="finish the requests an earlier forget left: rebuild them "
                   "(and purge them with --purge)")
    s.add_argument("--reason", help="why (kept with the request)")
    s.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    s.add_argument("--no-rebuild", action="store_true", help="record the request only (several requests are then "
                   "rebuilt together by `slowwave forget --pending`)")
    s.add_argument("--purge", action="store_true", help="after the rebuild is promoted, erase the forgotten words and "
                   "the weights of every version and adapter that learned them (manifests kept, marked purged)")
    s.set_defaults(func=cmd_forget)
    s = sub.add_parser("schedule", help="serve the nightly sleep on its cron from this process")
    s.add_argument("--cron", help="cron expression (default from config: '0 3 * * *')")
    s.add_argument("--timezone", help="IANA time zone (default: this machine's)")
    s.add_argument("--all-tenants", action="store_true", help="serve the nightly fan-out over every tenant of "
                   "$SLOWWAVE_ROOT and the tenants' sleep deployment it starts")
    s.set_defaults(func=cmd_schedule)
    s = sub.add_parser("tenants", help="list the tenants of $SLOWWAVE_ROOT: current version, last sleep, sleep "
                       "pressure and what waits to be learned")
    s.set_defaults(func=cmd_tenants)
    s = sub.add_parser("chat", help="talk with the current model version in the terminal (every turn is logged "
                       "for the next sleep; /quit, /sleep, /forget-session)")
    s.set_defaults(func=cmd_chat)
    s = sub.add_parser("serve", help="answer an OpenAI-compatible HTTP API and a web chat page with the current "
                       "version (swapped in when a sleep moves it; logs every turn; sleeps under pressure)")
    s.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    s.add_argument("--port", type=int, help="port to listen on (default from config: 8742)")
    s.set_defaults(func=cmd_serve)
    s = sub.add_parser("doctor", help="check platform, MLX, BLAS speed, model, warehouse and Prefect")
    s.set_defaults(func=cmd_doctor)
    s = sub.add_parser("demo", help="run the whole pipeline on the bundled sample conversations")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `slowwave` console command."""
    args = build_parser().parse_args(argv)
    args.home_given = bool(args.home or args.tenant or os.environ.get("SLOWWAVE_HOME")
                           or os.environ.get("SLOWWAVE_TENANT"))
    signal.signal(signal.SIGTERM, _on_sigterm)  # a flow run swaps in Prefect's own handler while it runs
    code = _run(args)
    if args.func is cmd_serve:
        # The server stopped cleanly: its threads are joined and every logged line was fsynced. Leaving without
        # the interpreter's teardown skips native destructors that, under load, raced MLX's own threads
        # ("terminate called without an active exception", SIGABRT) after the server had already stopped.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def resolve_home(args) -> Home:
    """--home, else --tenant (or $SLOWWAVE_TENANT, when --home is not given), else $SLOWWAVE_HOME / ~/.slowwave."""
    from storage.tenants import tenant_home

    if args.tenant and args.home:
        raise InputError("--home and --tenant both given: a tenant's home is $SLOWWAVE_ROOT/tenants/NAME; use one")
    tenant = args.tenant or (None if args.home else os.environ.get("SLOWWAVE_TENANT"))
    return tenant_home(tenant) if tenant else Home.resolve(args.home)


def _run(args) -> int:
    try:
        return args.func(args, resolve_home(args))
    except SlowwaveError as exc:
        print(f"slowwave: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left on device" not in str(exc):
            raise
        where = exc.filename or args.home or os.environ.get("SLOWWAVE_HOME") or "~/.slowwave"
        print(f"slowwave: error: {where}: {os.strerror(errno.ENOSPC)}; nothing half-written was kept "
              "(what was written before is intact): free some space and run it again", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"slowwave: stopped by {name}; nothing half-written was kept", file=sys.stderr)
        return 128 + int(getattr(signal, name))


if __name__ == "__main__":
    sys.exit(main())
