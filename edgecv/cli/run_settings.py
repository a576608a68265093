"""``edgecv run``'s task object: the model's stated task unless ``--task``, with the settings flags laid over it."""

from __future__ import annotations

import argparse
from typing import Any

from .settings_flags import collect, settings_manifest

__all__ = ["open_task", "task_keywords"]


def task_keywords(verb: str, args: argparse.Namespace, stated: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The task constructor's keywords for the flags given (a flag left out leaves the setting to the model)."""
    labels = stated.get("labels")
    options: dict[str, Any] = {"labels": labels if isinstance(labels, str) else settings.labels,
                               "preprocessing": settings.preprocessing}
    if verb == "classify":
        options.update(top_k=getattr(args, "top_k", None), score_threshold=stated.get("score_threshold"))
    elif verb == "detect":
        options.update(head=settings.head, outputs=dict(settings.outputs) or None)
    return {key: value for key, value in options.items() if value is not None}


def open_task(args: argparse.Namespace) -> Any:
    """Load ``args.model`` and make the task object; ``args.task`` is set to the verb used.

    Raises:
        ConfigError: no ``--task`` and the model states no task.
        (and everything :func:`edgecv.load` and the task constructors raise)
    """
    from ..errors import ConfigError
    from ..model import load
    from ..task_registry import get_task
    from ..tasks import task_class

    model = load(args.model, target=args.target, backend=args.backend, num_threads=args.threads)
    try:
        name = args.task or model.manifest.task
        if name is None:
            raise ConfigError(f"--task is needed: {model.path.name} does not state its task (it carries no edgecv "
                              "manifest); pass --task classify|detect|segment|embed, or write it into the model "
                              f"once with edgecv annotate (edgecv describe {model.path.name} shows what it states)")
        info = get_task(name)
        args.task = info.verb
        stated = collect(args)
        settings = settings_manifest(info.name, stated, model)
        task = task_class(info.name)(model, **task_keywords(info.verb, args, stated, settings))
    except BaseException:
        model.close()
        raise
    task._owned = True          # the task closes the model it was given here (as if it had loaded it)
    return task
