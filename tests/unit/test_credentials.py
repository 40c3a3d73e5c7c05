"""Where secrets come from (environment, keyring, prompt), what happens when a stored one is
refused, and how `login` reads one from standard input. Also the AD bind refusal codes and the
``[keyring]`` config table, which decide when a stored password is dropped and which keyring
may hold it.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.cli.auth import read_for_login
from bitkey_dir.cli.terminal import Terminal
from bitkey_dir.core.errors import AuthError, ConfigError, ExitCode, InputError
from bitkey_dir.runtime import credentials, interaction, keystore
from bitkey_dir.runtime.config import load_config
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.runtime.keystore import client_secret_entry, password_entry
from bitkey_dir.sources.ad.servers import bind_refusal
from tests.conftest import KeyringFile

USER = "helpdesk@corp.example"
PASSWORD = password_entry("corp", USER)
WANTED = Wanted("corp", f"the password of {USER}", "BITKEY_DIR_PASSWORD", PASSWORD)
CLIENT = "66666666-7777-8888-9999-000000000000"
CLIENT_WANTED = Wanted(
    "cloud",
    f"the client secret of app {CLIENT}",
    "BITKEY_DIR_CLIENT_SECRET",
    client_secret_entry("cloud", CLIENT),
)
STORED = "Stored-Secret-1"
WHY = "ldaps://dc1 rejected the user name or password for helpdesk@corp.example (data 52e)"


class Stdin:
    """Standard input: a terminal or not, with bytes behind it."""

    def __init__(self, data: bytes = b"", *, tty: bool = False) -> None:
        self.buffer = io.BytesIO(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Stderr(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Prompts:
    """Stands in for getpass.getpass: answers in turn, remembering each prompt."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, prompt: str = "Password: ", stream: object = None) -> str:
        self.asked.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


@pytest.fixture(autouse=True)
def _fresh_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No keystore from an earlier test, the command line's terminal interaction, and no
    terminal behind it unless a test says so (pytest's captured stderr is not one either)."""
    monkeypatch.setattr(keystore, "_RUN", {})
    monkeypatch.setattr("sys.stdin", Stdin())
    with interaction.using(Terminal()):
        yield


@pytest.fixture
def stored(file_keyring: KeyringFile) -> KeyringFile:
    """The file keyring, allowed for this run, holding the corp password."""
    file_keyring.store(PASSWORD, STORED)
    keystore.begin_run(allow_plaintext=True)
    return file_keyring


def terminal(monkeypatch: pytest.MonkeyPatch, *answers: str) -> tuple[Prompts, Stderr]:
    prompts = Prompts(*answers)
    stderr = Stderr(tty=True)
    monkeypatch.setattr("sys.stdin", Stdin(tty=True))
    monkeypatch.setattr("sys.stderr", stderr)
    monkeypatch.setattr("getpass.getpass", prompts)
    return prompts, stderr


def no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        pytest.fail("prompted")

    monkeypatch.setattr("getpass.getpass", refuse)


# -- Secret -------------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-Value", "keyring")
    assert repr(secret) == "Secret(origin='keyring')"
    assert str(secret) == "<secret from keyring>"
    assert f"{secret}" == "<secret from keyring>"
    assert "hunter2" not in repr([secret]) + repr({"s": secret})
    assert secret.value == "hunter2-Value"


# -- obtain: environment, keyring, prompt, error ------------------------------------------------


def test_environment_wins_over_the_keyring(
    stored: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "From-Env-2")
    no_prompt(monkeypatch)
    assert credentials.obtain(WANTED) == Secret("From-Env-2", "environment")
    assert stored.entries() == {PASSWORD: STORED}


def test_environment_is_read_without_touching_the_keyring(
    locked_keyring: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "From-Env-2")
    assert credentials.obtain(WANTED) == Secret("From-Env-2", "environment")
    # A locked keyring was never asked, so nothing was said about it.
    assert keystore.current().info().usable is True
    assert capsys.readouterr().err == ""


def test_keyring_is_used_when_the_environment_is_unset(
    stored: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_prompt(monkeypatch)
    assert credentials.obtain(WANTED) == Secret(STORED, "keyring")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "")  # empty is unset
    assert credentials.obtain(WANTED) == Secret(STORED, "keyring")


def test_each_secret_has_its_own_entry(stored: KeyringFile) -> None:
    stored.store(CLIENT_WANTED.entry, "Client-Secret-3")
    assert credentials.obtain(CLIENT_WANTED) == Secret("Client-Secret-3", "keyring")
    assert credentials.obtain(WANTED) == Secret(STORED, "keyring")


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        (
            WANTED,
            "no password for corp: run `bitkey-dir login corp` to store it in the keyring, "
            "set BITKEY_DIR_PASSWORD, or run on a terminal to be asked for it",
        ),
        (
            CLIENT_WANTED,
            "no client secret for cloud: run `bitkey-dir login cloud` to store it in the "
            "keyring, set BITKEY_DIR_CLIENT_SECRET, or run on a terminal to be asked for it",
        ),
    ],
)
def test_nothing_stored_and_no_terminal_is_an_auth_error(
    monkeypatch: pytest.MonkeyPatch, wanted: Wanted, message: str, file_keyring: KeyringFile
) -> None:
    keystore.begin_run(allow_plaintext=True)
    no_prompt(monkeypatch)
    with pytest.raises(AuthError) as caught:
        credentials.obtain(wanted)
    assert caught.value.message == message
    assert caught.value.exit_code == ExitCode.AUTH
    assert int(caught.value.exit_code) == 3


@pytest.mark.parametrize(("wanted", "variable"), [(WANTED, "BITKEY_DIR_PASSWORD")])
def test_without_a_keyring_the_advice_is_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, wanted: Wanted, variable: str
) -> None:
    # `login` would fail as well: it stores in the keyring, and there is none.
    no_prompt(monkeypatch)
    with pytest.raises(AuthError) as caught:
        credentials.obtain(wanted)
    assert caught.value.message == (
        f"no password for corp: set {variable} (no keyring is usable here to keep it in, and "
        "there is no terminal to ask on)"
    )
    assert "login" not in caught.value.message


def test_only_stdin_a_terminal_is_not_enough_to_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    no_prompt(monkeypatch)
    monkeypatch.setattr("sys.stdin", Stdin(tty=True))  # stderr is redirected: nobody sees a prompt
    with pytest.raises(AuthError, match="set BITKEY_DIR_PASSWORD"):
        credentials.obtain(WANTED)


def test_prompt_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts, _ = terminal(monkeypatch, "Typed-4")
    assert credentials.obtain(WANTED) == Secret("Typed-4", "prompt")
    assert prompts.asked == [f"The password of {USER} (corp): "]


@pytest.mark.parametrize(("answers", "echoed"), [((), "\n"), (("",), "")], ids=["ctrl-d", "empty"])
def test_nothing_typed_is_an_auth_error(
    monkeypatch: pytest.MonkeyPatch, answers: tuple[str, ...], echoed: str
) -> None:
    prompts, stderr = terminal(monkeypatch, *answers)
    with pytest.raises(AuthError) as caught:
        credentials.obtain(WANTED)
    assert caught.value.message == "no password typed: nothing to sign in with"
    assert caught.value.hint == "`bitkey-dir login corp` stores it in the keyring"
    assert caught.value.exit_code == ExitCode.AUTH
    assert len(prompts.asked) == 1
    # The keyring's notice, then, after Ctrl-D, the end of the prompt's line, so that the
    # error starts on a line of its own.
    notice, rest = stderr.getvalue().split("\n", 1)
    assert notice.startswith("notice: keyring not used: ")
    assert rest == echoed


def test_keyring_wins_over_the_prompt(stored: KeyringFile, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts, _ = terminal(monkeypatch, "Typed-4")
    assert credentials.obtain(WANTED) == Secret(STORED, "keyring")
    assert prompts.asked == []


# -- rejected -----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["environment", "prompt", "stdin"])
def test_rejected_secret_not_from_the_keyring_leaves_the_keyring_alone(
    stored: KeyringFile, monkeypatch: pytest.MonkeyPatch, origin: credentials.Origin
) -> None:
    prompts, _ = terminal(monkeypatch, "Typed-4")
    with pytest.raises(AuthError) as caught:
        credentials.rejected(WANTED, Secret("Wrong-5", origin), WHY)
    assert caught.value.message == WHY
    assert stored.entries() == {PASSWORD: STORED}
    assert prompts.asked == []  # never asked again: that would be a second failed bind


def test_rejected_keyring_secret_is_removed_and_login_is_named(stored: KeyringFile) -> None:
    with pytest.raises(AuthError) as caught:
        credentials.rejected(WANTED, Secret(STORED, "keyring"), WHY)
    assert caught.value.message == (
        f"the directory refused the password of {USER} stored in the keyring for corp; it has "
        "been removed from the keyring. Run `bitkey-dir login corp` to store the current one"
    )
    assert caught.value.hint == WHY
    assert caught.value.exit_code == ExitCode.AUTH
    assert stored.entries() == {}
    assert STORED not in caught.value.message


def test_rejected_keyring_secret_asks_once_on_a_terminal(
    stored: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored.store(CLIENT_WANTED.entry, "unrelated")
    prompts, stderr = terminal(monkeypatch, "Current-6", "never-asked")
    assert credentials.rejected(WANTED, Secret(STORED, "keyring"), WHY) == Secret(
        "Current-6", "prompt"
    )
    assert prompts.asked == [f"The password of {USER} (corp): "]
    assert stored.entries() == {CLIENT_WANTED.entry: "unrelated"}
    assert stderr.getvalue() == (
        f"notice: the directory refused the password of {USER} stored in the keyring for corp; "
        "it has been removed from the keyring. Type the current one (asked once).\n"
    )


def test_rejected_keyring_secret_and_nothing_typed(
    stored: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch, "")
    with pytest.raises(AuthError) as caught:
        credentials.rejected(WANTED, Secret(STORED, "keyring"), WHY)
    assert caught.value.message.startswith("no password for corp: the directory refused")
    assert stored.entries() == {}


def test_remember_stores_only_a_retyped_secret(stored: KeyringFile) -> None:
    credentials.remember(WANTED, Secret("Env-7", "environment"))
    credentials.remember(WANTED, Secret("Stdin-7", "stdin"))
    assert stored.entries() == {PASSWORD: STORED}
    credentials.remember(WANTED, Secret("Current-6", "prompt"))
    assert stored.entries() == {PASSWORD: "Current-6"}


def test_remember_without_a_keyring_says_so_and_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    credentials.remember(WANTED, Secret("Current-6", "prompt"))
    said = capsys.readouterr().err
    assert said == (
        "notice: nothing stored: keyring not usable (keyring.backends.fail.Keyring: not used "
        "(no keyring backend is available on this system))\n"
    )
    assert "Current-6" not in said


# -- read_for_login -----------------------------------------------------------------------------


def read(data: bytes, monkeypatch: pytest.MonkeyPatch) -> Secret:
    stdin = Stdin(data)
    monkeypatch.setattr("sys.stdin", stdin)
    return read_for_login(WANTED)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"S3cret!\n", "S3cret!"),
        (b"S3cret!\r\n", "S3cret!"),
        (b"S3cret!", "S3cret!"),
        (b"S3cret!\nsecond line\n", "S3cret!"),
        (b" spaces inside and around \n", " spaces inside and around "),
        ("päss wörd €\n".encode(), "päss wörd €"),
        (b"x" * 1024 + b"\n", "x" * 1024),
        (b"x" * 1024 + b"\r\n", "x" * 1024),
        (b"x" * 1024, "x" * 1024),
    ],
)
def test_read_for_login_from_stdin(
    monkeypatch: pytest.MonkeyPatch, data: bytes, value: str
) -> None:
    no_prompt(monkeypatch)
    assert read(data, monkeypatch) == Secret(value, "stdin")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", f"expected the password of {USER} on the first line of standard input"),
        (b"\n", f"expected the password of {USER} on the first line of standard input"),
        (b"\r\n", f"expected the password of {USER} on the first line of standard input"),
        (b"\xff\xfepw\n", "standard input is not UTF-8 text: nothing stored"),
        (b"pw\xc3\n", "standard input is not UTF-8 text: nothing stored"),
        (b"x" * 1025 + b"\n", "as one line of at most 1024 printable characters"),
        (b"x" * 5000, "as one line of at most 1024 printable characters"),
        (b"a\tb\n", "as one line of at most 1024 printable characters"),
        (b"a\x00b\n", "as one line of at most 1024 printable characters"),
        (b"\x1b[31mred\n", "as one line of at most 1024 printable characters"),
        (b"pw\r\r\n", "as one line of at most 1024 printable characters"),
        ("pw\u2028x\n".encode(), "as one line of at most 1024 printable characters"),
    ],
)
def test_read_for_login_refuses(monkeypatch: pytest.MonkeyPatch, data: bytes, message: str) -> None:
    no_prompt(monkeypatch)
    with pytest.raises(InputError) as caught:
        read(data, monkeypatch)
    assert message in caught.value.message
    assert caught.value.message.endswith("nothing stored")
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert int(caught.value.exit_code) == 2
    assert "\n" not in caught.value.message


def test_read_for_login_reads_only_the_first_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = Stdin(b"first\nsecond\n")
    monkeypatch.setattr("sys.stdin", stdin)
    assert read_for_login(WANTED).value == "first"
    assert stdin.buffer.read() == b"second\n"


def test_read_for_login_prompts_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts, _ = terminal(monkeypatch, "Typed-8")
    assert read_for_login(WANTED) == Secret("Typed-8", "prompt")
    assert prompts.asked == [f"The password of {USER} (corp): "]


def test_read_for_login_nothing_typed_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch, "")
    with pytest.raises(InputError) as caught:
        read_for_login(WANTED)
    assert caught.value.message == "no password typed: nothing stored"
    assert caught.value.exit_code == ExitCode.BAD_INPUT


@given(st.binary(max_size=3000))
def test_read_for_login_any_bytes_give_a_secret_or_input_error(data: bytes) -> None:
    saved = sys.stdin
    sys.stdin = Stdin(data)
    outcome: Secret | InputError
    try:
        outcome = read_for_login(WANTED)
    except InputError as exc:  # anything else fails the test
        outcome = exc
    finally:
        sys.stdin = saved
    if isinstance(outcome, InputError):
        assert outcome.exit_code == ExitCode.BAD_INPUT
        assert "\n" not in outcome.message
        assert outcome.message.endswith("nothing stored")
        return
    secret = outcome
    assert secret.origin == "stdin"
    assert secret.value
    assert 0 < len(secret.value) <= 1024
    assert secret.value.isprintable()


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1024))
def test_read_for_login_keeps_a_printable_ascii_line_whole(line: str) -> None:
    saved = sys.stdin
    sys.stdin = Stdin(line.encode() + b"\n")
    try:
        if line:
            assert read_for_login(WANTED) == Secret(line, "stdin")
        else:
            with pytest.raises(InputError):
                read_for_login(WANTED)
    finally:
        sys.stdin = saved


@pytest.mark.parametrize(
    "line",
    ["é" * 600, "€" * 400, "a" + "é" * 600, "🔑" * 300],
    ids=["e-acute", "euro", "split", "emoji"],
)
def test_read_for_login_keeps_a_long_non_ascii_line_whole(
    monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    assert len(line) <= 1024
    assert read(line.encode() + b"\n", monkeypatch) == Secret(line, "stdin")


# -- bind_refusal -------------------------------------------------------------------------------

AD_DETAIL = "80090308: LdapErr: DSID-0C09030B, comment: AcceptSecurityContext error, data {}, v4563"


@pytest.mark.parametrize("code", ["52e", "525", "52E"])
def test_bind_refusal_wrong_password_or_user_is_none(code: str) -> None:
    assert bind_refusal(AD_DETAIL.format(code)) is None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("775", "the account is locked out"),
        ("533", "the account is disabled"),
        ("701", "the account has expired"),
        ("530", "the account may not sign in at this time"),
        ("531", "the account may not sign in from this workstation"),
        (
            "532",
            "the account's password has expired; change it, then run `bitkey-dir login` again",
        ),
        (
            "773",
            "the account must change its password first; then run `bitkey-dir login` again",
        ),
    ],
)
def test_bind_refusal_account_states(code: str, message: str) -> None:
    assert bind_refusal(AD_DETAIL.format(code)) == message


@pytest.mark.parametrize("code", ["568", "ABC", "0a1"])
def test_bind_refusal_unknown_code_is_generic(code: str) -> None:
    assert bind_refusal(AD_DETAIL.format(code)) == (
        f"the directory refused this account (data {code.lower()})"
    )


@pytest.mark.parametrize(
    "detail",
    [
        "",
        "invalidCredentials",
        "80090308: LdapErr: DSID-0C09030B, AcceptSecurityContext error",
        "data 52",  # too short
        "metadata 775",  # not a word boundary
        "data 7750",  # too long
    ],
)
def test_bind_refusal_without_a_data_code_is_none(detail: str) -> None:
    assert bind_refusal(detail) is None


# -- [keyring] in the config ----------------------------------------------------------------------


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("", False),
        ("[keyring]\n", False),
        ("[keyring]\nallow_plaintext = false\n", False),
        ("[keyring]\nallow_plaintext = true\n", True),
        ("keyring = { allow_plaintext = true }\n", True),
    ],
)
def test_keyring_allow_plaintext(tmp_path: Path, text: str, allowed: bool) -> None:
    assert load_config(config_file(tmp_path, text)).allow_plaintext_keyring is allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[keyring]\nallow_plaintext = 'yes'\n",
            "keyring.allow_plaintext: expected true or false",
        ),
        ("[keyring]\nallow_plaintext = 1\n", "keyring.allow_plaintext: expected true or false"),
        (
            "[keyring]\nallow_plain_text = true\n",
            "keyring.allow_plain_text: unknown key (known keys: allow_plaintext)",
        ),
        (
            "[keyring]\nbackend = 'x'\n",
            "keyring.backend: unknown key (known keys: allow_plaintext)",
        ),
        ("keyring = true\n", "keyring: expected a table [keyring]"),
    ],
)
def test_keyring_table_errors(tmp_path: Path, text: str, message: str) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == f"{path}: {message}"
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in caught.value.message


@pytest.fixture
def one_operation() -> Iterator[None]:
    """Claims for one operation, forgotten afterwards (as Run.active() does)."""
    with credentials.claims():
        yield


def test_a_source_reads_its_own_variable_before_the_bare_one(
    monkeypatch: pytest.MonkeyPatch, one_operation: None
) -> None:
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "bare")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_CORP", "own")
    credentials.claim(WANTED)
    assert credentials.obtain(WANTED).value == "own"
    assert WANTED.own_env == "BITKEY_DIR_PASSWORD_CORP"
    assert credentials.own_variable("BITKEY_DIR_PASSWORD", "emea-ad.2") == (
        "BITKEY_DIR_PASSWORD_EMEA_AD_2"
    )


def test_the_bare_variable_is_given_to_one_source_only(
    monkeypatch: pytest.MonkeyPatch, one_operation: None
) -> None:
    other = Wanted("emea", "the password of x@emea", "BITKEY_DIR_PASSWORD", "emea/password/x")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "bare")
    credentials.claim(WANTED)
    assert credentials.obtain(WANTED).value == "bare"  # the only source that reads it
    credentials.claim(other)
    with pytest.raises(InputError, match="BITKEY_DIR_PASSWORD_CORP, BITKEY_DIR_PASSWORD_EMEA"):
        credentials.check_shared()
    for wanted in (WANTED, other):
        with pytest.raises(InputError) as refused:
            credentials.obtain(wanted)
        assert refused.value.exit_code == ExitCode.BAD_INPUT
    # Each with its own variable: the bare one is never used, and nothing is refused.
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_CORP", "corp's")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_EMEA", "emea's")
    credentials.check_shared()
    assert [credentials.obtain(w).value for w in (WANTED, other)] == ["corp's", "emea's"]


def test_two_sources_of_one_account_share_the_bare_variable(
    monkeypatch: pytest.MonkeyPatch, one_operation: None
) -> None:
    forest = Wanted("forest", WANTED.label, "BITKEY_DIR_PASSWORD", "forest/password/x")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "bare")
    credentials.claim(WANTED)
    credentials.claim(forest)
    credentials.check_shared()
    assert [credentials.obtain(w).value for w in (WANTED, forest)] == ["bare", "bare"]


def test_two_sources_whose_variables_collide_are_refused(
    monkeypatch: pytest.MonkeyPatch, one_operation: None
) -> None:
    dashed = Wanted("a-b", "the password of x", "BITKEY_DIR_PASSWORD", "a-b/password/x")
    dotted = Wanted("a.b", "the password of y", "BITKEY_DIR_PASSWORD", "a.b/password/y")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD_A_B", "one")
    credentials.claim(dashed)
    credentials.claim(dotted)
    with pytest.raises(InputError, match="differ only in punctuation"):
        credentials.obtain(dashed)
