"""``controller dropbox``: connect accounts (OAuth with PKCE), list them, serve the webhook."""

from __future__ import annotations

import click

from controller.cli_base import Context, out, pass_context, print_json
from controller.errors import ConfigError


@click.group("dropbox")
def dropbox_group() -> None:
    """Connect Dropbox accounts and receive their change notifications."""


def _app_key(ctx: Context, app_key: str | None) -> str:
    key = app_key or ctx.settings.dropbox_app_key
    if not key:
        raise ConfigError(
            "the Dropbox app key is needed: set CONTROLLER_DROPBOX_APP_KEY or --app-key"
        )
    return key


@dropbox_group.command("authorize")
@click.option("--app-key", help="The app key (default: CONTROLLER_DROPBOX_APP_KEY).")
@click.option(
    "--show-token",
    is_flag=True,
    help="Also print the refresh token (to keep it in a secret store); it is stored either way.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the connected account as JSON.")
@pass_context
def authorize(ctx: Context, app_key: str | None, show_token: bool, as_json: bool) -> None:
    """Connect a Dropbox account: OAuth code flow with PKCE, no app secret needed.

    Prints a URL; open it, allow the app, paste the code shown. The refresh
    token is stored with the account, so `controller blog add BLOG --source
    dropbox:/folder` can then connect blogs without a token option.
    """
    from dropbox import oauth
    from dropbox.exceptions import DropboxException

    from controller.dropbox.client import make_client, session_for
    from controller.store.accounts import DropboxAccountRecord

    key = _app_key(ctx, app_key)
    flow = oauth.DropboxOAuth2FlowNoRedirect(key, use_pkce=True, token_access_type="offline")
    flow.requests_session = session_for(ctx.settings)
    click.echo("1. Open this URL and allow the app:", err=True)
    click.echo(flow.start())
    code = click.prompt("2. Paste the authorization code", err=True).strip()
    try:
        result = flow.finish(code)
        client = make_client(ctx.settings, refresh_token=result.refresh_token, app_key=key)
        account = client.users_get_current_account()
    except (DropboxException, oauth.NotApprovedException, OSError) as exc:
        raise ConfigError(f"Dropbox did not accept the code: {type(exc).__name__}") from None
    record = DropboxAccountRecord(
        account_id=account.account_id,
        email=account.email,
        display_name=account.name.display_name,
        app_key=key,
        refresh_token=result.refresh_token,
    )
    ctx.store.dropbox_accounts.save(record)
    if as_json:
        value = record.as_json()
        if show_token:
            value["refresh_token"] = result.refresh_token
        print_json(value)
        return
    out.print(f"connected Dropbox account {record.email} ({record.account_id})")
    if show_token:
        out.print(f"refresh token: {result.refresh_token}")


@dropbox_group.command("accounts")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_context
def accounts(ctx: Context, as_json: bool) -> None:
    """List connected Dropbox accounts and their blogs (never their tokens)."""
    records = ctx.store.dropbox_accounts.all()
    blogs = ctx.store.dropbox_accounts.blogs_by_account()
    if as_json:
        print_json([{**r.as_json(), "blogs": blogs.get(r.account_id, [])} for r in records])
        return
    if not records:
        out.print("no Dropbox account connected: run `controller dropbox authorize`")
    for r in records:
        names = ", ".join(blogs.get(r.account_id, [])) or "no blogs"
        out.print(f"{r.account_id}  {r.email or ''}  ({names})")


@dropbox_group.command("webhook")
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve the webhook (behind your HTTPS reverse proxy).",
)
@pass_context
def webhook(ctx: Context, listen: str) -> None:
    """Serve only the Dropbox webhook (`controller serve` also mounts it).

    Dropbox calls it with the accounts that changed; their blogs' triggers are
    bumped and `controller run` does the work. Needs CONTROLLER_DROPBOX_APP_SECRET
    to check signatures.
    """
    import uvicorn

    from controller.dropbox.webhook import webhook_app
    from controller.triggers import Triggers

    secret = ctx.settings.dropbox_app_secret
    if not secret:
        raise ConfigError(
            "the webhook checks signatures with CONTROLLER_DROPBOX_APP_SECRET: set it"
        )
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen must look like HOST:PORT, got {listen!r}")
    triggers = Triggers(ctx.store, ctx.settings)
    app = webhook_app(
        app_secret=secret,
        blogs_by_account=ctx.store.dropbox_accounts.blogs_by_account,
        fire=triggers.fire,
    )
    out.print(f"serving the Dropbox webhook on http://{listen}/", style="bold")
    try:
        uvicorn.run(app, host=host, port=int(port), log_level="warning")
    finally:
        triggers.close()
