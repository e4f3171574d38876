"""For experiments, not for scanning: synthetic traffic signs (synth), backdoors planted by training (inject),
and the reference's network in flax (reference_net, imported only when training)."""
from ncjax.lab.inject import Backdoor, TrainConfig, train_classifier

__all__ = ["Backdoor", "TrainConfig", "train_classifier"]
