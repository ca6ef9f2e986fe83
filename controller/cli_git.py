"""``controller git``: the post-receive hook that tells the controller about a push."""

from __future__ import annotations

import click

from controller.cli_base import Context, pass_context


@click.group("git")
def git_group() -> None:
    """Git blogs: hooks for repositories the controller follows."""


@git_group.command("hook-path")
@click.argument("repository", type=click.Path(exists=True, file_okay=False))
@pass_context
def hook_path(ctx: Context, repository: str) -> None:
    """Print the post-receive hook lines for REPOSITORY's blogs.

    Each line runs `controller reconcile --enqueue` for one blog that follows
    REPOSITORY (in place, or through a file:// mirror); add them to
    REPOSITORY/hooks/post-receive so a push triggers a pass at once.
    """
    from controller.errors import ConfigError
    from controller.git.connect import hook_lines

    lines = hook_lines(ctx.store, repository)
    if not lines:
        raise ConfigError(f"no blog follows the repository {repository}")
    for line in lines:
        click.echo(line)
