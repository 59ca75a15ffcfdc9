from __future__ import annotations

import pytest

from backstage.errors import BackstageError, InvalidName
from backstage.model.names import check_name


@pytest.mark.parametrize("name", ["MyAct", "kittens", "a1", "Shop_2"])
def test_good_names(name):
    assert check_name("Act", name) == name


@pytest.mark.parametrize(
    "name", ["../x", "a b", "-x", "1x", "os", "json", "django", "class", "", "_x", "x" * 41, "é"]
)
def test_bad_names_raise_a_value_error_that_is_a_backstage_error(name):
    with pytest.raises(InvalidName) as refused:
        check_name("Act", name)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, BackstageError)
    assert "\n" not in str(refused.value) and "Act name" in str(refused.value)
