"""View names are checked when a method is built: a sampler that asks for a transform key its ``views()`` does not
define fails at ``build_method`` with one line, not at the first batch."""
import pytest

from videossl.config import load_pretrain_config
from videossl.data.sampling import ViewSpec
from videossl.errors import UserError
from videossl.methods import METHODS, build_method
from videossl.methods.base import check_view_names
from videossl.methods.dpc import DPC


def _cfg(name, frames=4):
    overrides = ["data.num_frames=%d" % frames, "data.frame_stride=1", "data.crop_size=32",
                 f"method.name={name}", *METHODS[name].smoke_overrides]
    return load_pretrain_config(None, overrides, hardware=False)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_asks_only_for_views_it_defines(name):
    method = METHODS[name](_cfg(name))
    check_view_names(name, method.views())  # raises if a sampler key has no transform


def test_a_wrong_view_name_fails_at_build_with_one_line(monkeypatch):
    real_views = DPC.views

    def misnamed(self) -> ViewSpec:  # the sampler asks for "blocks"; the table now calls it "block"
        spec = real_views(self)
        return spec._replace(transforms={"block": spec.transforms["blocks"]})

    monkeypatch.setattr(DPC, "views", misnamed)
    with pytest.raises(UserError) as err:
        build_method(_cfg("dpc"))
    message = str(err.value)
    assert "\n" not in message
    assert message == ("method dpc: its sampler asks for view transform 'blocks', which its views() does not define "
                       "(it defines 'block')")
