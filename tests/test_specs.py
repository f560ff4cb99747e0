import pytest

from sdebayes.exceptions import SpecError
from sdebayes.specs import MODEL_NAMES, load_spec, model_path, spec_from_dict


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bundled_models_load(name):
    spec = load_spec(name)
    assert spec.name == name
    assert "[model]" in spec.source


def test_default_is_hierarchical_centred():
    spec = load_spec()
    assert (spec.pooling, spec.parameterization) == ("partial", "centred")


def test_pooling_of_bundled_models():
    assert load_spec("pooled").pooling == "complete"
    assert load_spec("unpooled").pooling == "none"


def test_a_path_loads_like_a_name():
    assert load_spec(model_path("pooled")) == load_spec("pooled")


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({"modle": {}}, r"unknown key\(s\) 'modle' in top level; valid keys: dynamics, model"),
        ({"priors": {"drift": {"sigma": 1.0}}}, r"unknown key\(s\) 'sigma' in \[priors.drift\]"),
        ({"priors": {"drift": {"diagonal_sigma": -1.0}}}, "diagonal_sigma = -1.0 must be positive"),
        ({"priors": {"diffusion": {"eta": "two"}}}, "eta = 'two' must be a finite number"),
        ({"priors": {"diffusion": {"floor": -0.1}}}, "floor = -0.1 must not be negative"),
        ({"model": {"pooling": "some"}}, "pooling = 'some' is invalid; use 'partial'"),
        ({"model": {"parameterization": "x"}}, "parameterization = 'x' is invalid"),
        (
            {"model": {"pooling": "none"}, "priors": {"drift_spread": {"diagonal_sigma": 1.0}}},
            r"\[priors.drift_spread\] only applies to pooling = 'partial'",
        ),
        ({"priors": []}, r"\[priors\] must be a table"),
    ],
)
def test_invalid_specs_list_what_is_allowed(document, match):
    with pytest.raises(SpecError, match=match):
        spec_from_dict(document)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[model\nname = 1\n")
    with pytest.raises(SpecError, match=r"broken\.toml: not valid TOML"):
        load_spec(path)


def test_missing_file_lists_bundled_models(tmp_path):
    with pytest.raises(SpecError, match="no such model file; pass a TOML path or one of hier"):
        load_spec(tmp_path / "absent.toml")
