"""Around the git source: connecting blogs, mirrors of remote repositories, hooks."""
