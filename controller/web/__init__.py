"""``controller serve``: the dashboard, the Dropbox webhook, metrics and probes."""
