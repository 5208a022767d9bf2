"""The training step's sync-free paths give the same numbers as the boolean-index paths they replace."""

import torch

from mdlm.loss import diffusion_loss
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.schedules import get_schedule
from mdlm.training.collator import MDMCollator


def test_flat_index_logits_and_loss_equal_the_boolean_mask_path():
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=16, mask_token_id=49)
    model = MDLMForMaskedLM(cfg).eval()
    ids = torch.randint(0, 49, (3, 16))
    masked = torch.rand(3, 16) < 0.5
    noisy = ids.masked_fill(masked, 49)
    index = masked.reshape(-1).nonzero().squeeze(1)
    by_mask = model(input_ids=noisy, logits_positions=masked).logits
    by_index = model(input_ids=noisy, logits_positions=index).logits
    assert torch.equal(by_mask, by_index)
    t = torch.rand(3)
    kw = dict(eligible=torch.ones_like(masked), mask_id=49)
    a = diffusion_loss(by_mask, ids, masked, t, get_schedule("linear"), **kw)
    b = diffusion_loss(by_index, ids, masked, t, get_schedule("linear"), index=index, **kw)
    assert torch.allclose(a.loss, b.loss) and torch.allclose(a.nll_sum, b.nll_sum)


def test_the_collator_says_on_the_host_whether_a_batch_is_padded():
    c = MDMCollator(pad_token_id=0)
    assert c([{"input_ids": [1, 2, 3]}, {"input_ids": [4, 5, 6]}])["padded"] is False
    assert c([{"input_ids": [1, 2, 3]}, {"input_ids": [4, 5]}])["padded"] is True
    assert c([{"input_ids": [1, 2, 3], "length": 2}])["padded"] is True
