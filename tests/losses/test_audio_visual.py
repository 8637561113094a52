"""Audio-visual losses (moved from methods/avid.py): cross_modal_nce is the symmetric InfoNCE of
losses/contrastive.py plus an optional hard negative; in_video_sync_nce is a two-way softmax."""
import math

import torch
import torch.nn.functional as F

from videossl.losses.audio_visual import cross_modal_nce, in_video_sync_nce
from videossl.losses.contrastive import info_nce_loss


def test_cross_modal_nce_is_the_mean_of_the_two_infonce_directions():
    torch.manual_seed(0)
    v, a = torch.randn(8, 16), torch.randn(8, 16)
    loss, top1 = cross_modal_nce(v, a, 0.07)
    torch.testing.assert_close(loss, 0.5 * (info_nce_loss(v, a, 0.07) + info_nce_loss(a, v, 0.07)))
    expected = ((F.normalize(v, dim=-1) @ F.normalize(a, dim=-1).T).argmax(1) == torch.arange(8)).float().mean()
    assert top1 == expected


def test_hard_negative_is_one_more_candidate_of_its_own_clip():
    torch.manual_seed(1)
    v, a, hard = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
    t = 0.1
    loss, _ = cross_modal_nce(v, a, t, hard)
    vn, an, hn = (F.normalize(x, dim=-1) for x in (v, a, hard))
    v2a = -sum(math.log(math.exp(float(vn[i] @ an[i]) / t)
                        / (sum(math.exp(float(vn[i] @ an[k]) / t) for k in range(4)) + math.exp(float(vn[i] @ hn[i]) / t)))
               for i in range(4)) / 4
    a2v = -sum(math.log(math.exp(float(an[i] @ vn[i]) / t) / sum(math.exp(float(an[i] @ vn[k]) / t) for k in range(4)))
               for i in range(4)) / 4
    assert abs(loss.item() - 0.5 * (v2a + a2v)) < 1e-4


def test_in_video_sync_nce_two_way_softmax():
    torch.manual_seed(2)
    v, a, hard = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)
    loss, accuracy = in_video_sync_nce(v, a, hard, 0.5)
    pos = F.cosine_similarity(v, a, dim=-1) / 0.5
    neg = F.cosine_similarity(v, hard, dim=-1) / 0.5
    torch.testing.assert_close(loss, F.softplus(neg - pos).mean())
    assert accuracy == (pos > neg).float().mean()
