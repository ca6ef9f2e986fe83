"""Dropbox around the source: clients, connecting blogs, OAuth, webhooks, long-polls."""
