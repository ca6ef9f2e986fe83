"""The ``controller`` command line.

Output goes through this module only: human text on a terminal, exact JSON
with ``--json`` for scripts. Errors become one line on stderr and an exit
status in one place (:func:`main`).
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from controller.cli_base import Context, err, out, pass_context, print_json
from controller.cli_dropbox import dropbox_group
from controller.cli_git import git_group
from controller.cli_serve import run, serve
from controller.errors import ConfigError, LeaseBusy
from reconcilers.errors import ControllerError
from reconcilers.sources.base import parse_source_spec

if TYPE_CHECKING:  # the store pulls in SQLAlchemy: imported when a command needs it
    from controller.reconcile import PassReport

EXIT_ERROR = 1
EXIT_BUSY = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="CONTROLLER_LOG_FORMAT",
    show_default=True,
    help="Log lines for people, or one JSON object per line (CONTROLLER_LOG_FORMAT).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, log_format: str) -> None:
    """Keep blog folders and their built posts converged with their sources.

    The store is CONTROLLER_DATABASE_URL (default: a SQLite file in the user's
    data directory); blog folders default to CONTROLLER_BLOGS_DIR/BLOG.
    """
    from controller.logs import configure

    configure([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], log_format)
    ctx.ensure_object(Context)


# -- blogs ------------------------------------------------------------------


@cli.group()
def blog() -> None:
    """Register, list and remove blogs."""


@blog.command("add")
@click.argument("blog_id", metavar="BLOG")
@click.option(
    "--source",
    "source",
    required=True,
    help=(
        "Where the blog comes from: local:PATH, dropbox:/path/of/the/folder,"
        " or git:PATH_OR_URL[#BRANCH]."
    ),
)
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="The blog folder to keep in sync (default: $CONTROLLER_BLOGS_DIR/BLOG).",
)
@click.option(
    "--refresh-token",
    envvar="CONTROLLER_DROPBOX_REFRESH_TOKEN",
    help="Dropbox: a refresh token (from `controller dropbox authorize`).",
)
@click.option(
    "--access-token",
    envvar="CONTROLLER_DROPBOX_ACCESS_TOKEN",
    help="Dropbox: a short-lived access token instead (for a quick test; it expires).",
)
@click.option(
    "--account",
    "account_id",
    help="Dropbox: use the tokens of an account connected by `controller dropbox authorize`.",
)
@click.option("--app-key", help="Dropbox: the app key (default: CONTROLLER_DROPBOX_APP_KEY).")
@click.option(
    "--app-secret", help="Dropbox: the app secret (default: CONTROLLER_DROPBOX_APP_SECRET)."
)
@pass_context
def blog_add(
    ctx: Context,
    blog_id: str,
    source: str,
    folder: Path | None,
    refresh_token: str | None,
    access_token: str | None,
    account_id: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Register BLOG, following SOURCE into its blog folder.

    A Dropbox blog is checked at once: the token must work and the folder
    exist; the folder is then followed by its id, so renaming it in Dropbox
    keeps the blog working. Tokens are stored in the store, never printed.
    """
    kind, location = parse_source_spec(source)
    if not blog_id or "/" in blog_id or blog_id in {".", ".."}:
        raise ConfigError("a blog id must be a non-empty name without '/'", blog_id=blog_id)
    target = (folder or ctx.settings.effective_blogs_dir / blog_id).expanduser().resolve()
    from controller.store import BlogRecord

    if kind == "dropbox":
        from controller.dropbox.connect import connect_blog

        record = connect_blog(
            ctx.settings,
            ctx.store,
            blog_id=blog_id,
            path=location,
            folder=str(target),
            refresh_token=refresh_token,
            access_token=access_token,
            app_key=app_key,
            app_secret=app_secret,
            account_id=account_id,
        )
    elif kind == "git":
        from controller.git.connect import connect_blog as connect_git

        record = connect_git(
            ctx.settings, ctx.store, blog_id=blog_id, location=location, folder=str(target)
        )
    else:
        path = Path(location).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"source folder {path} does not exist", blog_id=blog_id)
        record = ctx.store.add_blog(
            BlogRecord(
                id=blog_id,
                source_kind=kind,
                source_config={"location": str(path)},
                folder=str(target),
            )
        )
    out.print(f"added blog {record.id}: {record.source_spec} -> {record.folder}")


@blog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_context
def blog_list(ctx: Context, as_json: bool) -> None:
    """List registered blogs with their status."""
    blogs = ctx.store.list_blogs()
    if as_json:
        print_json([b.as_json() for b in blogs])
        return
    if not blogs:
        out.print("no blogs yet: add one with `controller blog add BLOG --source local:PATH`")
        return
    table = Table("blog", "source", "folder", "status", "last pass")
    for b in blogs:
        last = b.last_pass_at.isoformat(timespec="seconds") if b.last_pass_at else "never"
        table.add_row(b.id, b.source_spec, b.folder, b.status, last)
    out.print(table)


@blog.command("remove")
@click.argument("blog_id", metavar="BLOG")
@click.option("--delete-folder", is_flag=True, help="Also delete the blog folder from disk.")
@pass_context
def blog_remove(ctx: Context, blog_id: str, delete_folder: bool) -> None:
    """Forget BLOG (its rows in the store). The folder stays unless --delete-folder."""
    record = ctx.store.get_blog(blog_id)
    ctx.store.remove_blog(blog_id)
    if delete_folder and Path(record.folder).is_dir():
        shutil.rmtree(record.folder)
        out.print(f"removed blog {blog_id} and deleted {record.folder}")
    else:
        out.print(f"removed blog {blog_id} (folder {record.folder} left in place)")


# -- reconcile ----------------------------------------------------------------


@cli.command()
@click.option("--blog", "blog_id", required=True, metavar="BLOG", help="The blog to reconcile.")
@click.option("--full", is_flag=True, help="Also scan the blog folder for drift and repair it.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the blog's lease when another process holds it (then exit 3).",
)
@click.option(
    "--enqueue",
    is_flag=True,
    help="Do not reconcile here: record a trigger for `controller run` and return at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def reconcile(
    ctx: Context, blog_id: str, full: bool, wait: float, enqueue: bool, as_json: bool
) -> None:
    """Bring BLOG's folder and entries in line with its source.

    Repeats observe -> plan -> execute until the source shows no further
    change, holding the blog's lease so no other process changes it at the
    same time. Exits 0 when the pass completed (per-file errors included),
    1 on a blog-level error, 3 when the blog stayed busy for --wait seconds.
    """
    if enqueue:
        from controller.triggers import Triggers

        triggers = Triggers(ctx.store, ctx.settings)
        try:
            generation = triggers.fire(blog_id)
        finally:
            triggers.close()
        if as_json:
            print_json({"blog": blog_id, "enqueued": True, "generation": generation})
        else:
            out.print(f"blog {blog_id}: trigger {generation} recorded for `controller run`")
        return
    from controller.reconcile import Reconciler

    reconciler = Reconciler(ctx.store, ctx.settings)
    try:
        if as_json or not err.is_terminal:
            report = reconciler.reconcile(blog_id, full=full, wait=wait)
        else:
            with Progress(
                TextColumn(f"[bold]{blog_id}[/] installing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("install", total=None)
                report = reconciler.reconcile(
                    blog_id,
                    full=full,
                    wait=wait,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    finally:
        reconciler.close()
    if as_json:
        print_json(report.as_json())
    else:
        _print_report(ctx, report)


def _print_report(ctx: Context, report: PassReport) -> None:
    a = report.actions
    out.print(
        f"blog {report.blog}: {a['set']} set, {a['move']} move, {a['drop']} drop, "
        f"{report.errors} error{'s' if report.errors != 1 else ''} "
        f"in {report.passes} pass{'es' if report.passes != 1 else ''} ({report.seconds:.2f} s)"
    )
    if report.drifted:
        out.print(f"  repaired drift at {report.drifted} path(s) in the blog folder")
    for path, message in report.failures:
        out.print(f"  error  {path}: {message}")
    out.print(f"  folder:   {report.folder}")
    out.print(f"  database: {ctx.store.engine.url.render_as_string(hide_password=True)}")


# -- status and entries ----------------------------------------------------------


@cli.command()
@click.option("--blog", "blog_id", required=True, metavar="BLOG")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def status(ctx: Context, blog_id: str, as_json: bool) -> None:
    """Show each file of BLOG with its state and error."""
    record = ctx.store.get_blog(blog_id)
    synced = ctx.store.load_synced(blog_id)
    files = [
        {"path": path, "state": row.state.value, "error": row.error}
        for path, row in sorted(synced.items())
        if row.node.kind.value == "file"
    ]
    counts: dict[str, int] = {}
    for row in synced.values():
        if row.node.kind.value == "file":
            counts[row.state.value] = counts.get(row.state.value, 0) + 1
    if as_json:
        print_json({"blog": blog_id, "counts": counts, "files": files})
        return
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no files"
    out.print(f"blog {blog_id} ({record.status}): {summary}")
    if record.status_message:
        out.print(f"  {record.status_message}")
    for item in files:
        if item["state"] != "synced":
            out.print(
                f"  {item['state']:<9} {item['path']}"
                + (f": {item['error']}" if item["error"] else "")
            )


@cli.command()
@click.option("--blog", "blog_id", required=True, metavar="BLOG")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_context
def entries(ctx: Context, blog_id: str, as_json: bool) -> None:
    """List BLOG's entries (built posts), deleted ones included."""
    ctx.store.get_blog(blog_id)
    items = ctx.store.entries(blog_id)
    if as_json:
        print_json([e.as_json() for e in items])
        return
    table = Table("date", "title", "path", "tags", "flags")
    for e in items:
        flags = ", ".join(f for f, on in (("draft", e.draft), ("deleted", e.deleted)) if on)
        table.add_row(e.date.date().isoformat(), e.title, e.path, ", ".join(e.tags), flags)
    out.print(table)


# -- database ----------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Apply Alembic migrations to CONTROLLER_DATABASE_URL."""
    from controller.store import Store

    store = Store(ctx.settings.effective_database_url, auto_upgrade=True)
    store.upgrade()
    out.print(f"database {store.engine.url.render_as_string(hide_password=True)} is up to date")


cli.add_command(dropbox_group)
cli.add_command(git_group)
cli.add_command(run)
cli.add_command(serve)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="controller", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ControllerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BUSY if isinstance(exc, LeaseBusy) else EXIT_ERROR)
    sys.exit(0)
