"""The HTML report: self-contained, escaped, complete, written atomically."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from test_ppc import synthetic_fit
from typer.testing import CliRunner

import sdebayes.report
from sdebayes.cli import app
from sdebayes.exceptions import OutputError
from sdebayes.io_netcdf import save_posterior
from sdebayes.plots import FIGURES
from sdebayes.ppc import posterior_predictive_check
from sdebayes.report import build_report, write_report

runner = CliRunner()


class Collector(HTMLParser):
    """Collect tags, attributes and text of an HTML document; fail on unbalanced tables."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.depth += tag == "table"

    def handle_endtag(self, tag):
        self.depth -= tag == "table"

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def tree():
    return synthetic_fit(n_sessions=15, jitter=0.01)


@pytest.fixture(scope="module")
def document(tree):
    check = posterior_predictive_check(tree, n_draws=40, random_seed=1)
    return build_report(tree, check, dpi=40)


@pytest.fixture(scope="module")
def parsed(document):
    collector = Collector()
    collector.feed(document)
    return collector


def test_report_is_one_offline_page(document, parsed):
    assert document.startswith("<!DOCTYPE html>")
    assert "<script" not in document.lower()
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not re.match(r"(https?:)?//", value), (tag, attrs)
    assert parsed.depth == 0


def test_report_embeds_every_figure_as_png(parsed):
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert len(images) == len(FIGURES)
    for source in images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        assert base64.b64decode(source[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_has_the_summaries_diagnostics_and_checks(parsed):
    text = " ".join(parsed.text)
    for needle in (
        "Sampling diagnostics",
        "max R-hat",
        "convergence rate -max Re(eig A)",
        "equilibrium functionality",
        "P(row > column)",
        "Posterior predictive checks",
        "residual_autocorrelation",
        "final_pit",
        "synthetic.csv",
    ):
        assert needle in text, needle
    headings = [text for text in parsed.text if text in ("S1", "S2")]
    assert headings.count("S1") >= 2 and headings.count("S2") >= 2


def test_report_escapes_names(tree):
    odd = tree.copy()
    odd.attrs["data_source"] = "<b>sessions</b>.csv"
    check = posterior_predictive_check(odd, n_draws=20)
    document = build_report(odd, check, dpi=30)
    assert "<b>sessions</b>" not in document
    assert "&lt;b&gt;sessions&lt;/b&gt;.csv" in document


def test_write_report_checks_the_path_before_any_work(tree, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the report was built before the path was checked")

    monkeypatch.setattr(sdebayes.report, "build_report", refuse)
    with pytest.raises(OutputError, match=r"the directory .* does not exist"):
        write_report(tree, tmp_path / "missing" / "report.html")


def test_write_report_leaves_no_partial_file(tree, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(sdebayes.report, "build_report", explode)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_report(tree, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_report_command_writes_the_page(tree, tmp_path):
    posterior = save_posterior(tree, tmp_path / "fit.nc")
    result = runner.invoke(app, ["report", str(posterior), "--draws", "30"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "fit-report.html"
    assert page.is_file() and f"Report written to {page}" in result.output
    assert page.read_text(encoding="utf-8").count("data:image/png;base64,") == len(FIGURES)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{tmp}/none.nc"], r"none\.nc: no such file"),
        (["{posterior}", "--output", "{tmp}/no/dir/r.html"], r"the directory .* does not exist"),
        (["{posterior}", "--output", "{tmp}"], r"is a directory"),
    ],
)
def test_report_command_errors_are_one_line(tree, tmp_path, arguments, message):
    posterior = save_posterior(tree, tmp_path / "fit.nc")
    arguments = [a.format(tmp=tmp_path, posterior=posterior) for a in arguments]
    result = runner.invoke(app, ["report", *arguments])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output


@pytest.mark.slow
def test_report_on_the_default_posterior(paper_fit, tmp_path):
    posterior = save_posterior(paper_fit, tmp_path / "paper.nc")
    output = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(posterior), "--output", str(output)])
    assert result.exit_code == 0, result.output
    page = output.read_text(encoding="utf-8")
    for name in ("EF", "SF", "FF", "AI", "max R-hat", "Posterior predictive checks"):
        assert name in page
    assert page.count("data:image/png;base64,") == len(FIGURES)
