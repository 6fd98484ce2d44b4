"""How `mailfilter directory` shows its work: import's progress bar, and the customer `show` matched.

rich is imported only when something is shown; the customer in `show --format
json` is the directory table's own view of it (mailfilter.aws.directory_items.view_values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailfilter_cli import output

if TYPE_CHECKING:
    from rich.progress import Progress

    from mailfilter.directory.view import CustomerMatch


def progress_bar(dry_run: bool) -> tuple[Progress, Any, Any]:
    """A progress bar on stderr, and the `on_start` and `on_progress` callbacks of `import_directory` that drive it."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text  # noqa: PLC0415

    class Rate(ProgressColumn):
        """Customers per second, from rich's own speed estimate."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} customers/s" if speed else "-- customers/s", style="progress.data.speed")

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate(),
        TimeRemainingColumn(),
        console=output.console(stderr=True),
        transient=False,
    )
    task: list[Any] = []

    def started(customers: int) -> None:
        progress.start()
        task.append(progress.add_task("checking" if dry_run else "importing", total=customers))

    def advanced(count: int) -> None:
        if task:
            progress.advance(task[0], count)

    return progress, started, advanced


def match_dict(address: str, cloud: str, match: CustomerMatch | None) -> dict[str, Any]:
    """One line of `show --format json`: the address, the cloud, and the customer matched (None) with how."""
    if match is None:
        return {"address": address, "cloud": cloud, "customer": None}
    from mailfilter.aws.directory_items import view_values  # noqa: PLC0415 - boto3 only when a command runs

    return {
        "address": address,
        "cloud": cloud,
        "matched_by": match.matched_by,
        "entry": match.entry,
        "customer": view_values(match.customer),
    }


def show_match(address: str, cloud: str, match: CustomerMatch) -> None:
    """`show` for people: one line per fact, then the customer's CSP partners as a table."""
    from rich.text import Text  # noqa: PLC0415

    console = output.console()
    view = match.customer
    line = Text()
    line.append(address, style="bold")
    line.append(" in ")
    line.append(cloud, style="bold")
    line.append(f": {view.name} (tenant {view.tenant_id}), matched by {match.matched_by} entry {match.entry}")
    console.print(line, soft_wrap=True)  # one line per fact, so it can be grepped
    direct = ", ".join(sorted(view.direct_products)) or "-"
    console.print(Text(f"  direct relationship: {'yes' if view.direct_relationship else 'no'}; direct products: {direct}"), soft_wrap=True)
    if not view.partners:
        console.print("  no CSP partner")
        return
    partners = output.table("partner", "name", "owns", "contacts", title="  CSP partners", title_justify="left")
    rows = [
        (link.partner_id, link.name, ", ".join(link.products) or "every product", "\n".join(link.contacts) or "-") for link in view.partners
    ]
    output.print_table(output.fit(partners, rows, keep_whole=(0, 3)), console)
