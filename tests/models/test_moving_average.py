"""The moving average of weights shared by the VAE, GAN and diffusion families."""
import torch
from torch import nn

from genlab.models.base import moving_average_step


def test_moving_average_matches_the_recurrence_with_warm_up():
    torch.manual_seed(0)
    live, averaged = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    log_sigma, averaged_log_sigma = torch.zeros(2), torch.zeros(2)
    updates = torch.zeros((), dtype=torch.long)
    expected_weight, expected_sigma = averaged.weight.detach().clone(), averaged_log_sigma.clone()
    for n in range(40):
        with torch.no_grad():
            live.weight.normal_()
            live.running_mean.normal_()
            log_sigma.normal_()
        d = min(0.9, (1 + n) / (10 + n))  # written out here, independently of the helper
        expected_weight = d * expected_weight + (1 - d) * live.weight.detach()
        expected_sigma = d * expected_sigma + (1 - d) * log_sigma
        moving_average_step([(averaged, live), (averaged_log_sigma, log_sigma)], 0.9, updates)
    assert int(updates) == 40
    torch.testing.assert_close(averaged.weight.detach(), expected_weight)
    torch.testing.assert_close(averaged_log_sigma, expected_sigma)
    torch.testing.assert_close(averaged.running_mean, live.running_mean)  # buffers are copied
    assert not averaged.weight.grad_fn
