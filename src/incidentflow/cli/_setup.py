"""Setting up: ``init`` writes a configuration file, ``config show`` prints the one in effect."""

from __future__ import annotations

from pathlib import Path

import click

from ._app import App, environment_failure, pass_app
from ._output import toml_loads
from ._params import Group

__all__ = ["COMMANDS"]


@click.command(short_help="Write a commented incidentflow.toml.")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("incidentflow.toml"),
    show_default=True,
    help="Where to write the file (missing folders are made).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
def init(app: App, path: Path, force: bool) -> None:
    """Write a commented incidentflow.toml with the default policy."""
    from ..config import default_config_toml

    if path.name == "pyproject.toml":
        raise click.UsageError(
            "init writes a whole file; to configure in pyproject.toml, copy what "
            "'incidentflow init --path incidentflow.toml' writes under [tool.incidentflow]"
        )
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(default_config_toml(), encoding="utf-8")
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None
    app.emit({"written": str(path)}, f"wrote {path}; edit it, then run: incidentflow declare ...")


@click.group(cls=Group)
def config() -> None:
    """Inspect the configuration in effect."""


@config.command("show")
@pass_app
def config_show(app: App) -> None:
    """Print the configuration in effect (secrets masked) and where each part came from."""
    cfg = app.config
    source = str(cfg.source) if cfg.source is not None else None
    store, store_source = app.store_and_source()
    actor, actor_source = app.actor_and_source
    text = cfg.to_toml(masked=True)
    app.emit(
        {
            "source": source,
            "store": {"url": store, "from": store_source},
            "actor": {"name": actor, "from": actor_source},
            "config": toml_loads(text),
        },
        lambda: "\n".join(
            [
                f"# configuration file: {source or 'none found; the defaults apply'}",
                f"# store in effect: {store} (from {store_source})",
                f"# actor in effect: {actor} (from {actor_source})",
                text.rstrip(),
            ]
        ),
    )


COMMANDS: tuple[click.Command, ...] = (init, config)
