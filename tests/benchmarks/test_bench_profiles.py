"""The profile summary a missed target's row gets: our functions, then the leaves."""

from __future__ import annotations

from bench import profiles

RAW = "\n".join(
    [
        # 6 samples: the walk under the pass; 3: a store write; 1: elsewhere.
        "main (controller/cli.py:10);Reconciler._run (controller/reconcile.py:20);"
        "LocalSource._walk (reconcilers/sources/local.py:64);scandir (<frozen os>:1) 6",
        "main (controller/cli.py:10);Reconciler._run (controller/reconcile.py:20);"
        "Store.record (controller/store/store.py:344);execute (sqlalchemy/engine/base.py:1) 3",
        "main (controller/cli.py:10);import_module (importlib/__init__.py:1) 1",
    ]
)


def test_top_ranks_our_functions_by_inclusive_share_then_the_heaviest_leaves() -> None:
    rows = profiles.top(profiles._raw_stacks(RAW))
    assert rows == [
        "`reconcilers/sources/local.py` LocalSource._walk() 60%",
        "`controller/store/store.py` Store.record() 30%",
        "`<frozen os>` scandir() 60% self",
        "`base.py` execute() 30% self",
    ]


def test_the_skeleton_and_library_frames_never_rank_as_ours() -> None:
    rows = profiles.top(profiles._raw_stacks(RAW), n=10)
    assert not any("Reconciler._run" in r or "main()" in r for r in rows)
    assert not any(r.startswith("`sqlalchemy") for r in rows)


def test_profiling_is_off_unless_the_bench_command_turns_it_on() -> None:
    assert profiles.enabled is False
    assert profiles.spy_command(["true"]) == [] and profiles.cprofile(lambda: None) == []
