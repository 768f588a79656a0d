"""Delivering notifications from the outbox: ``deliver`` once, ``dispatch`` until stopped."""

from __future__ import annotations

import click

from ._app import App, pass_app
from ._output import outbox_json, plain, report_text, table
from ._params import Seconds, count

__all__ = ["COMMANDS"]


@click.command(short_help="Deliver pending notifications once.")
@click.option(
    "--limit",
    type=count(),
    default=1000,
    show_default=True,
    help="Notifications to attempt at most.",
)
@click.option(
    "--in-flight",
    type=count(1, 256),
    help="Deliveries at once (default: the config's max_in_flight, 8).",
)
@click.option("--dead", is_flag=True, help="List dead letters instead of delivering.")
@click.option("--redrive", is_flag=True, help="Put every dead letter back to be delivered.")
@pass_app
def deliver(app: App, limit: int, in_flight: int | None, dead: bool, redrive: bool) -> None:
    """Deliver pending notifications from the outbox once, then stop."""
    if dead and redrive:
        raise click.UsageError("--dead lists dead letters and --redrive re-drives them; pick one")
    flow = app.flow
    if dead:
        letters = flow.dead_letters(limit)
        app.emit(
            [outbox_json(item) for item in letters],
            lambda: table(
                ("ID", "EVENT", "NOTIFIER", "ATTEMPTS", "LAST ERROR"),
                ((i.id, i.event.type, i.notifier, str(i.attempts), i.last_error) for i in letters),
                empty="no dead letters",
            ),
        )
        return
    if redrive:
        redriven = flow.redrive()
        app.emit({"redriven": redriven}, f"{redriven} dead letter(s) put back to be delivered")
        return
    if in_flight is None:
        in_flight = app.config.max_in_flight
    report = flow.deliver_pending(limit=limit, max_in_flight=in_flight)
    app.emit(plain(report), lambda: report_text(plain(report)))


@click.command(short_help="Deliver notifications until stopped.")
@click.option(
    "--in-flight",
    type=count(1, 256),
    help="Deliveries at once (default: the config's max_in_flight, 8).",
)
@click.option(
    "--interval",
    type=Seconds(min=0.05, max=3600),
    help="Seconds between looks at the outbox (default: the config's poll_seconds, 1).",
)
@pass_app
def dispatch(app: App, in_flight: int | None, interval: float | None) -> None:
    """Deliver notifications in this process until Ctrl-C or SIGTERM.

    Deliveries then run in a process of their own, so a storm of commands
    elsewhere never competes with them for an interpreter. Set ``inline =
    false`` under ``[delivery]`` so that commands leave their notifications to
    it. Several dispatchers, on one host or many sharing a PostgreSQL store,
    split the work.
    """
    import signal
    import threading

    flow = app.flow
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    dispatcher = flow.dispatcher(
        max_in_flight=in_flight or app.config.max_in_flight,
        interval=interval or app.config.poll_interval,
    )
    dispatcher.start()
    click.echo("incidentflow: delivering; Ctrl-C or SIGTERM stops", err=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # a clean stop, like SIGTERM
    finally:
        dispatcher.stop()
        signal.signal(signal.SIGTERM, previous)
    app.emit(
        {"delivered": dispatcher.delivered},
        f"stopped; {dispatcher.delivered} notification(s) delivered",
    )


COMMANDS: tuple[click.Command, ...] = (deliver, dispatch)
