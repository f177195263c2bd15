"""The merge gate's git: the review worktree, origin's main, merging, landing and archive refs.

Everything here acts; nothing decides. Landing is a compare-and-swap push: main becomes
the tested merge commit only if it is still the commit the merge was made on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from factoryctl.adapters.git import GitError
from factoryctl.core.records import ReviewEntry
from factoryctl.jobs.context import Context
from factoryctl.jobs.workspace import Worktree, ensure_setup, write_excludes
from factoryctl.rules.changes import judging_config_changed, new_on_import_path, protected_touched, sensitive_touched
from factoryctl.rules.gate import BranchFacts

IDENTITY = ("factory review", "review@factory.invalid")


class MainMoved(Exception):
    """The compare-and-swap push found main at another commit than the one tested."""


def archive_ref(branch: str) -> str:
    return f"refs/archive/{branch}"


@dataclass(frozen=True)
class Merge:
    tip: str  # the merge commit (or `base` when nothing merged)
    merged: tuple[str, ...]  # branches in it, in order
    conflicts: dict[str, list[str]]  # branches left out, with the conflicting files


class ReviewTree(Worktree):
    """The merge gate's worktree: main and the work branches from origin, merges, landing."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, "review", IDENTITY)

    def prepare(self) -> None:
        """Fetch main and the work branches; make or repair the review worktree."""
        prefix = self.ctx.settings.repo.branch_prefix
        with self.ctx.repo_lock():
            self.fetch(f"+refs/heads/{prefix}/*:refs/remotes/origin/{prefix}/*")
            self.attach()
        write_excludes(self.ctx)

    def refresh_main(self) -> str:
        with self.ctx.repo_lock():
            self.fetch()
        return self.repo.rev(self.origin_main)

    def head_of(self, branch: str) -> str | None:
        return self.repo.maybe_rev(f"refs/remotes/origin/{branch}")

    def facts(self, entry: ReviewEntry, main_sha: str) -> BranchFacts:
        """Where the branch stands: gone, already on main, moved, touching protected paths."""
        head = self.head_of(entry.branch)
        if head is None:
            archived = self.archived(entry.branch)
            on_main = archived is not None and self.repo.is_ancestor(archived, main_sha)
            return BranchFacts(head=None, archived=archived, archived_on_main=on_main)
        if self.repo.is_ancestor(head, main_sha):
            return BranchFacts(head=head, head_on_main=True)
        files = self.repo.diffstat(main_sha, head).files
        repo = self.ctx.settings.repo
        protected = protected_touched(files, repo.protected_paths)
        sensitive = [
            path for path in sensitive_touched(files, [*repo.sensitive_paths, *repo.context_files])
            if judging_config_changed(path, self.blob(main_sha, path), self.blob(head, path))
        ]  # fmt: skip
        shadows = new_on_import_path(self.repo.added(main_sha, head), self.repo.top_level(main_sha))
        sensitive += [path for path in shadows if path not in sensitive]
        return BranchFacts(head=head, protected=tuple(protected), sensitive=tuple(sensitive))

    def blob(self, commit: str, path: str) -> str | None:
        """A file's text at a commit (None when it is not there)."""
        done = self.repo.run("cat-file", "blob", f"{commit}:{path}", check=False)
        return done.stdout if done.ok else None

    def checkout_main(self, commit: str) -> None:
        """The review worktree at main's `commit`, set up (repo.setup, with the shared caches) for the checks."""
        self.git.reset_to(commit)
        ensure_setup(self.ctx, self.path, "review", on_main=True)

    def merge(self, base: str, entries: Sequence[ReviewEntry]) -> Merge:
        """Merge the branches one after another onto `base`; conflicting ones are left out."""
        self.git.reset_to(base)
        merged: list[str] = []
        conflicts: dict[str, list[str]] = {}
        for entry in entries:
            task = f", task #{entry.task}" if entry.task is not None else ""
            message = f"Merge {entry.branch} (session {entry.session or '?'}{task})"
            done = self.git.run("merge", "--no-ff", "--no-edit", "-m", message,
                                f"refs/remotes/origin/{entry.branch}", check=False)  # fmt: skip
            if done.ok:
                merged.append(entry.branch)
                continue
            files = self.git.out("diff", "--name-only", "--diff-filter=U").splitlines()
            self.git.run("merge", "--abort", check=False)
            self.git.run("reset", "--hard", "--quiet", check=False)
            conflicts[entry.branch] = files or [done.tail(120)]
        ensure_setup(self.ctx, self.path, "review")
        return Merge(self.git.rev("HEAD"), tuple(merged), conflicts)

    def merge_of(self, commit: str) -> tuple[str, str] | None:
        """(first parent, second parent) of a two-parent merge commit this clone has, else None."""
        done = self.repo.run("rev-list", "--parents", "-n", "1", commit, "--", check=False)
        parts = done.stdout.split() if done.ok else []
        return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == commit else None

    def conflicts_with(self, base: str, branch: str) -> list[str]:
        """The files `branch` conflicts in when merged onto `base`, found without a worktree (git merge-tree,
        git 2.38+); [] when it merges cleanly or git cannot tell (the merge itself finds it then)."""
        done = self.repo.run("merge-tree", "--write-tree", "--name-only", "--no-messages", base,
                             f"refs/remotes/origin/{branch}", check=False)  # fmt: skip
        if done.returncode != 1:  # 0: clean; anything else: an older git, or no such ref
            return []
        return [line for line in done.stdout.splitlines()[1:] if line.strip()] or ["(unnamed files)"]

    def land(self, tip: str, expected_main: str) -> None:
        """Compare-and-swap: main becomes `tip` only if it is still `expected_main`."""
        done = self.repo.run(
            "push", "--porcelain", f"--force-with-lease=refs/heads/{self.main}:{expected_main}",
            "origin", f"{tip}:refs/heads/{self.main}", check=False, env=self._gate_key(),
        )  # fmt: skip
        if done.ok:
            return
        if self.refresh_main() != expected_main:
            raise MainMoved(expected_main)
        raise GitError(done)  # refused for another reason (a protected branch, a hook): say so

    def _gate_key(self) -> dict[str, str]:
        """The gate's key for a local origin's update hook (the deploy makes it; none: no such hook)."""
        try:
            return {"FACTORY_GATE_KEY": self.ctx.paths.gate_key_file.read_text().strip()}
        except OSError:
            return {}

    def archive_and_delete(self, branch: str) -> None:
        """Keep the branch under its archive ref on origin and delete it (a no-op when gone)."""
        head = self.head_of(branch)
        if head is None:
            return
        self.repo.push("origin", ["--atomic", f"{head}:{archive_ref(branch)}", f":refs/heads/{branch}"])
        self.repo.run("update-ref", "-d", f"refs/remotes/origin/{branch}", check=False)

    def archived(self, branch: str) -> str | None:
        out = self.repo.run("ls-remote", "origin", archive_ref(branch), check=False).stdout.split()
        return out[0] if out else None

    def restore(self, branch: str, commit: str) -> None:
        """Push the archived commit back as the branch."""
        with self.ctx.repo_lock():
            ref = archive_ref(branch)
            self.repo.run("fetch", "--quiet", "origin", f"+{ref}:{ref}")
            self.repo.push("origin", [f"{commit}:refs/heads/{branch}"])

    def diff(self, base: str, branch: str, budget: int) -> tuple[str, str, str | None]:
        """(diff, shortstat, what was cut) of the branch against `base`, the diff within `budget`."""
        spec = f"{base}...refs/remotes/origin/{branch}"
        done = self.repo.run("diff", "--no-color", spec, "--")
        diff = done.stdout
        stat = self.repo.out("diff", "--shortstat", spec, "--")
        if len(diff) <= budget and not done.cut:
            return diff.rstrip(), stat, None
        whole = f"more than {len(diff):,}" if done.cut else f"{len(diff):,}"
        return diff[:budget] + "\n[...cut]", stat, f"the diff cut at {budget:,} of {whole} characters"
