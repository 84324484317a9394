"""The shared text rules every source uses: inline vs block markup, TeX to Unicode, author names, DOIs."""

from __future__ import annotations

import pytest

from digest.sources.text import author_list, find_doi, plain, split_names, strip_markup, tex_to_unicode


@pytest.mark.parametrize(
    ("tex", "unicode"),
    [
        ("D\\'enes Berta", "Dénes Berta"),
        ("V\\'aclav Vavry\\v{c}uk", "Václav Vavryčuk"),
        ("Przemys{\\l}aw Olbratowski", "Przemysław Olbratowski"),
        ("Serdar Kad{\\i}o\\u{g}lu", "Serdar Kadıoğlu"),
        ("Schr\\\"odinger, Cram\\'er-Rao, Erd\\H{o}s", "Schrödinger, Cramér-Rao, Erdős"),
        ('Stra{\\ss}e and {\\AA}ngstr\\"om', "Straße and Ångström"),
        ("\\c{C}a\\u{g}lar and Fran\\c cois", "Çağlar and François"),
        ("\\$OneMillion-Bench", "$OneMillion-Bench"),
        ("50\\% of R\\&D", "50% of R&D"),
        ("{\\em small} and \\textit{large sets}", "small and large sets"),
    ],
)
def test_tex_accents_and_escapes_become_unicode(tex: str, unicode: str) -> None:
    assert tex_to_unicode(tex) == unicode


@pytest.mark.parametrize(
    "text",
    [
        "Learning on $\\mathbb{R}^3$ with $\\alpha \\in (0,1)$",
        "$$\\sum_i x_i$$ and \\(\\hat{y}\\) and \\[\\nabla f\\]",
        "the kernel \\cite{smith} is C:\\Users\\ada",
        "Don\\'t stop",
        "no TeX here",
    ],
)
def test_maths_and_unknown_macros_stay_as_written(text: str) -> None:
    assert tex_to_unicode(text) == text


def test_tex_inside_maths_is_kept_but_text_around_it_is_converted() -> None:
    assert tex_to_unicode('$\\alpha$-Schr\\"odinger at \\$5 and $x^2$') == "$\\alpha$-Schrödinger at $5 and $x^2$"


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("CO<sub>2</sub> capture", "CO₂ capture"),
        ("Ca<sup>2+</sup> ions", "Ca²⁺ ions"),
        ("a 480ft<sup>2</sup> room", "a 480ft² room"),
        ("H<sub>eff</sub> and x<sup>a+b</sup>", "Heff and xa+b"),
        ("<i>E. coli</i> in <b>vivo</b>", "E. coli in vivo"),
        ("<p>First.</p><p>Second.</p>", "First. Second."),
        ("line<br/>break and cell</td><td>cell", "line break and cell cell"),
        ("p &lt; 0.05 and q > 1", "p < 0.05 and q > 1"),
        ("Heavy Tails &amp; Outliers", "Heavy Tails & Outliers"),
    ],
)
def test_inline_markup_joins_block_markup_separates(html: str, text: str) -> None:
    assert plain(html) == text


def test_strip_markup_leaves_text_without_markup_alone() -> None:
    assert strip_markup("plain words") == "plain words"
    assert plain(None) == "" and plain(42) == ""


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("Mira Okafor, Jun Tanaka", ["Mira Okafor", "Jun Tanaka"]),
        (
            "Tianliang Yan (University of Birmingham, School of Physics and Astronomy, Birmingham, United Kingdom), "
            "Yubao Liu (Peking University, Beijing)",
            ["Tianliang Yan", "Yubao Liu"],
        ),
        ("Kukla, D., Crampton, A., Wood, D., Khetani, S.", ["D. Kukla", "A. Crampton", "D. Wood", "S. Khetani"]),
        ("van der Berg, J.-P., Smith, JP", ["J.-P. van der Berg", "JP Smith"]),
        ("Ana Souza, Li Wei, and Noor Aziz", ["Ana Souza", "Li Wei", "Noor Aziz"]),
        ("Ana Souza, Li Wei & Noor Aziz", ["Ana Souza", "Li Wei", "Noor Aziz"]),
        (
            "ATLAS Collaboration, G. Aad, B. Abbott, et al. (909 additional authors not shown)",
            ["ATLAS Collaboration", "G. Aad", "B. Abbott"],
        ),
        ("Google, IBM", ["Google", "IBM"]),
        ("John Smith, Jr., Ana Souza", ["John Smith, Jr.", "Ana Souza"]),
        ("D\\'enes Berta; Przemys{\\l}aw Olbratowski", ["Dénes Berta", "Przemysław Olbratowski"]),
        (" , ;  ", []),
    ],
)
def test_author_strings_as_feeds_write_them(raw: str, names: list[str]) -> None:
    assert split_names(raw) == names


def test_one_element_per_author_may_be_written_surname_first() -> None:
    assert author_list(["John Smith, Jr.", "Ana Souza"]) == ("John Smith, Jr.", "Ana Souza")
    assert author_list(["Rivera, A.", "Martín, Rosa", "Gbolahan Ajibola"]) == (
        "A. Rivera",
        "Rosa Martín",
        "Gbolahan Ajibola",
    )
    assert author_list(["Rosa Martín, Li Wei"]) == ("Rosa Martín", "Li Wei"), "one element may list many people"
    assert author_list(['<a href="/au:Aad">G. Aad</a>, <a href="/au:Abbott">B. Abbott</a>']) == ("G. Aad", "B. Abbott")
    assert author_list(["A B, A B", "A B"]) == ("A B",), "repeats dropped"
    assert len(author_list([", ".join(f"Person {i}" for i in range(900))], limit=500)) == 500


@pytest.mark.parametrize(
    ("candidates", "doi"),
    [
        ((None, "hwp:resource-id:sci;383/6680/258", "info:doi/10.1126/science.adk1234"), "10.1126/science.adk1234"),
        (("doi: 10.3390/fluids9050120",), "10.3390/fluids9050120"),
        (("https://www.science.org/doi/abs/10.1126/science.adk1234?af=R",), "10.1126/science.adk1234"),
        (("https://doi.org/10.1038/S41586-024-07824-Z",), "10.1038/s41586-024-07824-z"),
        (("jep-2026-0101", "http://biorxiv.org/cgi/content/short/2024.05.20.594980v1?rss=1"), None),
    ],
)
def test_dois_wherever_feeds_put_them(candidates: tuple[str | None, ...], doi: str | None) -> None:
    assert find_doi(*candidates) == doi
