"""The blog folder as a tree for the file viewer, from the synced rows (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.store.views import FileView


@dataclass
class Folder:
    name: str
    path: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[FileView] = field(default_factory=list)

    def sorted_folders(self) -> list[Folder]:
        return [self.folders[k] for k in sorted(self.folders)]


def build_tree(files: list[FileView]) -> Folder:
    root = Folder("", "")
    for item in files:
        parts = item.path.split("/")
        here = root
        for depth, part in enumerate(parts[:-1]):
            path = "/".join(parts[: depth + 1])
            here = here.folders.setdefault(part, Folder(part, path))
        if item.kind == "dir":
            here.folders.setdefault(parts[-1], Folder(parts[-1], item.path))
        else:
            here.files.append(item)
    return root
