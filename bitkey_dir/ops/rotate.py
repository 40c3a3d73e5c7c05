"""Rotate disclosed keys: ask the directory where it can (Intune), say how by hand elsewhere.

Every device's rotation, asked for or left to be done by hand, is in the access trail before
the result is returned. No password is shown, and an Entra source reads none (rotation goes
by device, found from names or key metadata).

What is rotated is only what the query names for certain:

- an 8-digit Key ID (any prefix) is first matched in every source, without rotating
  anything; when it matches keys of more than one device, nothing is rotated and the
  matches are listed (exit 2): the full Key ID or ``--computer`` says which one;
- a key whose password the account may not read was not disclosed through it: it is left
  out, with a warning, and when it was the only key found the source's answer is a rights
  problem (exit 3) rather than a rotation.

With ``wait`` (rotate --wait) the requested rotations are followed up until each is done,
failed or not supported, or the time is up (ops/rotation_wait.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import AuthError, ExitCode, InputError
from bitkey_dir.core.model import KeyId, Query, RecoveryKey
from bitkey_dir.core.rotation import KeyOnVolume, Rotation, rotation_steps
from bitkey_dir.ops import policy
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.run import Answer, Run, ask_all
from bitkey_dir.sources.base import ListsKeys, Rotates, Source, Warn
from bitkey_dir.store import trail

MAX_WAIT: Final = 24 * 3600  # a day: a device that has not rotated by then is followed up later
SHOWN_MATCHES: Final = 5


@dataclass
class RotateResult:
    """One Rotation per device found, each source's status, and its warnings."""

    query: Query
    rotations: list[Rotation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    trail_problem: str | None = None
    waited: float | None = None  # rotate --wait: the seconds allowed

    @property
    def exit_code(self) -> ExitCode:
        """0 when every device was asked to rotate (with ``waited``: and has rotated); 1
        when nothing was found, a device must be rotated by hand, or a rotation was still
        pending when the wait ended; 4 when a device reported the rotation failed or not
        supported; else a failed source's code (3 for a missing right)."""
        states = [r.progress.state if r.progress else None for r in self.rotations]
        wanted = "done" if self.waited is not None else None
        done = bool(self.rotations) and all(
            r.outcome == "requested" and (wanted is None or state == wanted)
            for r, state in zip(self.rotations, states, strict=True)
        )
        answer = ExitCode.FOUND if done else ExitCode.NOT_FOUND
        code = exit_code(answer, self.sources, every_source_needed=False)
        if code in (ExitCode.FOUND, ExitCode.NOT_FOUND) and (
            "failed" in states or "not supported" in states
        ):
            return ExitCode.SOURCE_FAILED
        return code


def rotate(
    run: Run,
    query: Query,
    sources: Sequence[str] = (),
    *,
    reason: str | None = None,
    wait: float | None = None,
) -> RotateResult:
    """Rotate the keys answering ``query`` in ``sources`` (default: the config's); with
    ``wait`` (seconds), follow the requested rotations up until they end or time is up."""
    policy.check_reason(reason)
    check_wait(wait)
    policy.demand_reason(run.config, reason, "rotating keys")
    with run.active():
        opened = run.open(sources)
        principals = {source.name: getattr(source, "principal", None) for source in opened}
        result = RotateResult(query, waited=wait)
        if query.key_id is not None and not query.key_id.is_full:
            _rotate_one_device(run, query, opened, result)
        else:
            _gather(result, ask_all(opened, _rotator(query)))
        result.trail_problem = policy.record(
            run.config,
            trail.rotation_entries(result.rotations, reason, run.command, principals),
            refusing="rotation was asked for, but",
        )
        if wait is not None:
            from bitkey_dir.ops import rotation_wait

            rotation_wait.follow_up(run, result, wait)
            policy.record(
                run.config,
                trail.rotation_entries(
                    [r for r in result.rotations if r.progress and r.progress.state != "pending"],
                    reason,
                    run.command,
                    principals,
                ),
                refusing="the rotation ended, but",
            )
    return result


def check_wait(wait: float | None) -> None:
    if wait is not None and not 0 < wait <= MAX_WAIT:
        raise InputError(f"--wait takes 1 to {MAX_WAIT} seconds")


def rotate_revealed(
    run: Run,
    keys: Sequence[RecoveryKey],
    *,
    reason: str | None = None,
    wait: float | None = None,
) -> list[RotateResult]:
    """After a reveal (find --rotate): rotate exactly the keys whose password was shown, each
    in the source that held it; one result per key and source, asked once however many
    times the lookup listed it."""
    shown = dict.fromkeys(
        (key.key_id, key.source) for key in keys if key.recovery_password is not None
    )
    return [
        rotate(run, Query(key_id=key_id), [source], reason=reason, wait=wait)
        for key_id, source in shown
    ]


def _gather(result: RotateResult, answers: Sequence[Answer[list[Rotation]]]) -> None:
    for answer in answers:
        result.rotations += answer.value or []
        result.warnings += answer.warnings
        result.sources.append(answer.status)


def _rotator(query: Query) -> Callable[[Source, Warn], list[Rotation]]:
    def rotate_in(source: Source, warn: Warn) -> list[Rotation]:
        if isinstance(source, Rotates):
            return source.rotate(query, warn)
        return by_hand(source, query, warn)

    return rotate_in


# -- a Key ID prefix: one device, or nothing -----------------------------------------------


@dataclass(frozen=True)
class Match:
    """Keys of one device in one source that a Key ID prefix matched: a source that can
    rotate has not been asked to yet; one that cannot already has its steps (``by_hand``)."""

    source: str
    computer: str | None
    key_ids: tuple[KeyId, ...]
    by_hand: Rotation | None = None

    def describe(self) -> str:
        keys = ", ".join(str(key_id) for key_id in self.key_ids)
        return f"{self.computer or '(computer unknown)'} ({self.source}: {keys})"


def _rotate_one_device(
    run: Run, query: Query, opened: Sequence[Source], result: RotateResult
) -> None:
    """Match the prefix everywhere first; refuse when the matches are more than one device,
    else rotate that device in each source that holds it."""
    answers = ask_all(opened, _matcher(query))
    matches = [match for answer in answers for match in answer.value or []]
    devices = _devices(matches)
    if len(devices) > 1:
        listed = "; ".join(
            " + ".join(match.describe() for match in device) for device in devices[:SHOWN_MATCHES]
        )
        more = f"; and {len(devices) - SHOWN_MATCHES} more" if len(devices) > SHOWN_MATCHES else ""
        raise InputError(
            safe(
                f"{query.describe()} matches keys of {len(devices)} devices: {listed}{more}; "
                "nothing was rotated: give the full Key ID, or --computer NAME"
            )
        )
    result.warnings += [warning for answer in answers for warning in answer.warnings]
    statuses = {answer.status.name: answer.status for answer in answers}
    to_ask: dict[str, list[KeyId]] = {}
    for match in matches:
        if match.by_hand is not None:
            if match.by_hand not in result.rotations:
                result.rotations.append(match.by_hand)
        else:
            to_ask.setdefault(match.source, []).extend(match.key_ids)
    reopened = [run.open_one(name) for name in to_ask]
    for answer in ask_all(reopened, _rotate_ids(to_ask)) if reopened else []:
        result.rotations += answer.value or []
        result.warnings += answer.warnings
        statuses[answer.status.name] = answer.status
    result.sources += statuses.values()


def _matcher(query: Query) -> Callable[[Source, Warn], list[Match]]:
    def match_in(source: Source, warn: Warn) -> list[Match]:
        if not isinstance(source, Rotates):
            # Keys of no known computer are as many devices as keys: nothing says otherwise.
            return [
                Match(source.name, rotation.computer, ids, rotation)
                for rotation in by_hand(source, query, warn)
                for ids in (
                    [rotation.key_ids]
                    if rotation.computer is not None
                    else [(key_id,) for key_id in rotation.key_ids]
                )
            ]
        # Listed, not found: a lookup would read (and Entra audit) every password matched.
        prefix = query.key_id
        assert prefix is not None  # noqa: S101 - the caller asks only for a Key ID prefix
        listed: list[tuple[KeyId, str | None, str | None]] = (
            [
                (entry.key_id, entry.computer, entry.device_id)
                for entry in source.iter_key_entries(warn)
                if not entry.deleted and prefix.matches(entry.key_id)
            ]
            if isinstance(source, ListsKeys)
            else [(key.key_id, key.computer, key.device_id) for key in source.find(query, warn)]
        )
        per_device: dict[str, list[tuple[KeyId, str | None]]] = {}
        for key_id, computer, device_id in listed:
            per_device.setdefault(device_id or key_id.hex, []).append((key_id, computer))
        return [
            Match(source.name, keys[0][1], tuple(dict.fromkeys(key for key, _ in keys)))
            for keys in per_device.values()
        ]

    return match_in


def _devices(matches: Sequence[Match]) -> list[list[Match]]:
    """Matches grouped into devices: the same full Key ID in two sources (AD and Entra, two
    tenants) is one volume, so one device; anything else is a device of its own, since
    computer names repeat across directories and even within one."""
    devices: list[list[Match]] = []
    for match in matches:
        joined = [d for d in devices if any(set(m.key_ids) & set(match.key_ids) for m in d)]
        merged = [m for d in joined for m in d] + [match]
        devices = [d for d in devices if d not in joined] + [merged]
    return devices


def _rotate_ids(
    ids_of: dict[str, list[KeyId]],
) -> Callable[[Source, Warn], list[Rotation]]:
    """Rotate the one device whose keys these are, asked by its first key's full ID."""

    def rotate_in(source: Source, warn: Warn) -> list[Rotation]:
        assert isinstance(source, Rotates)  # noqa: S101 - only sources that rotate are asked
        ids = tuple(dict.fromkeys(ids_of[source.name]))
        return [
            replace(rotation, key_ids=tuple(dict.fromkeys((*rotation.key_ids, *ids))))
            for rotation in source.rotate(Query(key_id=ids[0]), warn)
        ]

    return rotate_in


# -- by hand ----------------------------------------------------------------------------------


def by_hand(source: Source, query: Query, warn: Warn) -> list[Rotation]:
    """A directory that cannot rotate: the keys found, per computer, with the steps. Keys
    whose password this account may not read were not disclosed through it: left out,
    with a warning, or refused (AuthError) when no other key was found."""
    kind = getattr(source, "type_name", None)
    backup: Literal["ad"] | None = "ad" if kind == "ad" else None
    where = (
        "Active Directory cannot ask a device to rotate its keys"
        if kind == "ad"
        else "this source cannot ask a device to rotate its keys"
    )
    found = list(source.find(query, warn))
    readable = [key for key in found if key.recovery_password is not None]
    unread = [key for key in found if key.recovery_password is None]
    if unread:
        who = getattr(source, "principal", None) or "this account"
        listed = ", ".join(f"{key.key_id} ({key.computer or '?'})" for key in unread[:5])
        message = (
            f"{who} may not read the password of {listed}"
            f"{' and more' if len(unread) > 5 else ''}: not disclosed through it, so "
            "not rotated here (rotate as the account that read it, or on the device)"
        )
        if not readable:
            raise AuthError(message)
        warn(message)
    per_computer: dict[str | None, list[RecoveryKey]] = {}
    for key in readable:
        per_computer.setdefault(key.computer, []).append(key)
    return [
        Rotation(
            source.name,
            computer,
            None,
            tuple(dict.fromkeys(key.key_id for key in keys)),
            "by hand",
            f"{where}: rotate them on the device, as an administrator, in PowerShell",
            rotation_steps(
                [KeyOnVolume(key.key_id, key.volume_type, key.volume_id) for key in keys],
                backup=backup,
            ),
        )
        for computer, keys in per_computer.items()
    ]
