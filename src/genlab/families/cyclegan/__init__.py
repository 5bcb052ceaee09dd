"""CycleGAN (Zhu et al. 2017): unpaired translation between the training data (domain A) and a
second dataset (``domain_b``), two U-Net or ResNet generators and two least-squares PatchGANs."""
from ...family import Family
from .model import CycleGAN, CycleGANConfig


def _prepare_data(data, settings, data_dir=None, seed: int = 0):
    """Each batch brings images of the second domain as its condition images."""
    from .data import second_domain

    return second_domain(data, settings.get("domain_b"), data_dir, seed)


def _data_settings(data) -> dict:
    """Domain B's image shape (the joined data's condition images) tells the model its channels."""
    return {} if data.conditions is None else {"condition_shape": data.condition_shape}


def _run_name(model_name: str, data_name: str, settings) -> str:
    domain_b = settings.get("domain_b")
    return f"{model_name}-{data_name}-{domain_b}" if domain_b else f"{model_name}-{data_name}"


def _measures(model, data, seed: int = 0, data_dir=None) -> dict:
    from .quality import domain_transfer_quality

    return domain_transfer_quality(model, data, data_dir)


def _direction_argument(parser) -> None:
    parser.add_argument("--direction", choices=["a-to-b", "b-to-a"], help="cyclegan: which way to translate "
                        "(default a-to-b: from the training data's domain to --domain-b's)")


FAMILY = Family(
    name="cyclegan", model_class=CycleGAN,
    presets={"cyclegan": {}},
    aliases={"cycle-gan": "cyclegan", "unpaired-translation": "cyclegan"},
    prepare_data=_prepare_data,
    data_settings=_data_settings,
    run_name=_run_name,
    measures=_measures,
    tool_arguments={"translate": _direction_argument},
)

__all__ = ["FAMILY", "CycleGAN", "CycleGANConfig"]
