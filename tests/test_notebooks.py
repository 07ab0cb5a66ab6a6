"""The notebooks: thin, stored without outputs, and run on a real kernel (nbclient).

The kernels run against a home whose certificates the real daemon issued; the last test
drives the panels inside the kernel while ``certdesk watch`` answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest_panels import CF_COMPANY, CF_PERSON, REPO, RealDaemon, openssl_csr
from nbclient import NotebookClient

from certdesk.frame import load_ledger

NOTEBOOKS = REPO / "notebooks"
PANELS = {
    "richiesta": ("make_request_panel", "Richiedi certificato"),
    "stato": ("make_status_panel", "Stato certificati"),
    "annullamento": ("make_cancellation_panel", "Annullamento certificato"),
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- stored as they should be ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PANELS))
def test_notebook_is_thin_and_stored_without_outputs(name: str) -> None:
    raw = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert "widgets" not in raw["metadata"], "widget state stored in the notebook"
    factory, title = PANELS[name]
    markdown = [c for c in raw["cells"] if c["cell_type"] == "markdown"]
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert len(markdown) == 1 and len(code) == 1
    assert "".join(markdown[0]["source"]).startswith(f"# {title}\n")
    source = "".join(code[0]["source"])
    assert source.count("display(") == 1 and f"display({factory}(notebook_home()))" in source
    assert "%" not in source and "!" not in source  # no magics, no shell
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None
        assert cell["metadata"] == {}


def test_nbstripout_finds_nothing_to_strip() -> None:
    notebooks = sorted(str(p) for p in NOTEBOOKS.glob("*.ipynb"))
    assert len(notebooks) == 3
    exe = Path(sys.executable).with_name("nbstripout")
    done = subprocess.run([str(exe), "--verify", *notebooks], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"notebooks hold outputs; run nbstripout:\n{done.stdout}"


def test_git_strips_notebooks_on_commit() -> None:
    attributes = (REPO / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "*.ipynb filter=nbstripout" in attributes
    assert "*.ipynb diff=ipynb" in attributes


# -- executed on a real kernel ------------------------------------------------------------


def new_client(nb: nbformat.NotebookNode) -> NotebookClient:
    # the kernel starts in notebooks/, as under Jupyter and Voila
    return NotebookClient(nb, timeout=120, kernel_name="python3",
                          resources={"metadata": {"path": str(NOTEBOOKS)}})


def run(name: str, *extra: str) -> list[dict[str, Any]]:
    """Execute ``name`` on a kernel, then ``extra`` cells in the same kernel.

    Each extra cell can use ``panel``: the widget the notebook displayed. Returns what the
    extra cells printed as JSON (one value per cell).
    """
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = new_client(nb)
    printed: list[dict[str, Any]] = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        outputs = nb.cells[1]["outputs"]
        assert not [o for o in outputs if o["output_type"] == "error"], outputs
        views = [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
        assert len(views) == 1, outputs
        model_id = views[0]["data"][WIDGET_VIEW]["model_id"]
        prelude = ("from ipywidgets.widgets.widget import _instances\n"
                   f"panel = _instances[{model_id!r}]\nimport json\n")
        for source in (prelude, *extra):
            cell = nbformat.v4.new_code_cell(source)
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
            errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
            assert not errors, "\n".join(errors[0]["traceback"]) if errors else ""
            text = "".join(o.get("text", "") for o in cell["outputs"]
                           if o["output_type"] == "stream" and o["name"] == "stdout")
            if source is not prelude:
                printed.append(json.loads(text))
    return printed


@pytest.fixture(scope="module")
def issued_home(ca_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with real certificates: two issued by ``certdesk watch``, one cancelled."""
    home = tmp_path_factory.mktemp("nb") / "home"
    shutil.copytree(ca_template, home)
    keys = tmp_path_factory.mktemp("nb-keys")
    (home / "inbox").mkdir(exist_ok=True)
    for cf in (CF_PERSON, CF_COMPANY):
        shutil.copy(openssl_csr(keys, cf), home / "inbox" / f"{cf}.csr")
    daemon = RealDaemon(home)
    done = daemon.run("watch", "--once", "--workers", "1")
    assert done.returncode == 0, done.stderr
    ledger = load_ledger(home)
    assert list(ledger["Stato"]) == ["ATTIVATO", "ATTIVATO"], ledger
    return home


@pytest.fixture
def certdesk_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kernels inherit the environment: no CERTDESK_HOME leaks in from the developer's."""
    monkeypatch.delenv("CERTDESK_HOME", raising=False)
    yield


@pytest.mark.usefixtures("certdesk_home")
def test_richiesta_runs_and_defaults_to_the_repository(tmp_path: Path) -> None:
    # no CERTDESK_HOME: the kernel starts in notebooks/, so the home is the repository root
    (shown,) = run("richiesta", "print(json.dumps({'home': str(panel.home), "
                                "'type': type(panel).__name__, 'button': panel.submit.description,"
                                "'daemon': panel.daemon.value}))")
    assert shown["home"] == str(REPO)
    assert shown["type"] == "RequestPanel"
    assert shown["button"] == "Richiedi certificato"


@pytest.mark.usefixtures("certdesk_home")
def test_stato_runs_on_the_real_ledger(issued_home: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setenv("CERTDESK_HOME", str(issued_home))
    (shown,) = run("stato", "panel.wait_for_charts()\n"
                            "print(json.dumps({'home': str(panel.home), "
                            "'rows': panel.matching, 'table': panel.table.value, "
                            "'charts': [len(i.value) for i in panel.charts.values()]}))")
    assert shown["home"] == str(issued_home)
    assert shown["rows"] == 2
    for _, row in load_ledger(issued_home).iterrows():
        assert str(row["IdOperazione"]) in shown["table"]
    assert all(size > 1000 for size in shown["charts"])


@pytest.mark.usefixtures("certdesk_home")
def test_annullamento_runs_on_the_real_ledger(issued_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTDESK_HOME", str(issued_home))
    (shown,) = run(
        "annullamento",
        f"panel.select({CF_PERSON!r})\n"
        "print(json.dumps({'options': list(panel.codice_fiscale.options), "
        "'certs': panel.certs.value, 'button': panel.submit.layout.display}))",
    )
    assert shown["options"] == sorted([CF_PERSON, CF_COMPANY])
    id_op = load_ledger(issued_home).set_index("CodiceFiscale").loc[CF_PERSON, "IdOperazione"]
    assert id_op in shown["certs"]
    assert shown["button"] != "none"


@pytest.mark.usefixtures("certdesk_home")
def test_request_and_cancellation_on_a_kernel_with_the_live_daemon(
    ca_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(ca_template, home)
    csr = openssl_csr(tmp_path, CF_PERSON)
    monkeypatch.setenv("CERTDESK_HOME", str(home))
    with RealDaemon(home):
        (receipt,) = run(
            "richiesta",
            "import datetime as dt, pathlib\n"
            f"data = pathlib.Path({str(csr)!r}).read_bytes()\n"
            "panel.upload.value = ({'name': 'mia.csr', 'type': '', 'size': len(data), "
            "'content': memoryview(data), "
            "'last_modified': dt.datetime.now(dt.timezone.utc)},)\n"
            "panel.submit.click()\n"
            "assert panel.waiter.join(60)\n"
            "print(json.dumps({**panel.last_receipt, 'shown': panel.result.value}))",
        )
        assert receipt["esito"] == "OK", receipt
        assert receipt["stato"] == "ATTIVATO"
        id_op = receipt["id_operazione"]
        assert (home / "outbox" / "certs" / f"{id_op}.pem").exists()
        assert id_op in receipt["shown"] and "certdesk-download" in receipt["shown"]

        (outcome,) = run(
            "annullamento",
            f"panel.select({CF_PERSON!r})\n"
            "panel.motivazione.value = 'CHIAVE_SMARRITA'\n"
            "panel.operatore.value = 'test notebook'\n"
            "panel.submit.click()\n"
            "assert panel.waiter.join(60)\n"
            "print(json.dumps({**panel.last_receipt, 'shown': panel.result.value, "
            "'button': panel.submit.layout.display}))",
        )
    assert outcome["esito"] == "OK", outcome
    assert outcome["id_operazione"] == [id_op]
    assert f"<code>{id_op}</code>" in outcome["shown"]
    assert outcome["button"] == "none"  # nothing left ATTIVATO
    ledger = load_ledger(home)
    assert ledger.loc[0, "Stato"] == "ANNULLATO"
    assert ledger.loc[0, "Motivazione"] == "CHIAVE_SMARRITA"
    assert not os.listdir(home / "inbox") or all(
        n.startswith(".") for n in os.listdir(home / "inbox"))
