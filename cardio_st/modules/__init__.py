"""Building blocks that plug into sentence-transformers and save as its own module types.

- [eos_pooling][cardio_st.modules.eos_pooling.eos_pooling]: last-token pooling with a guaranteed EOS.
- [lora_transformer][cardio_st.modules.lora_transformer.lora_transformer]: a Transformer with a LoRA
  adapter over an optional 8-bit / 4-bit base; [merge_lora][cardio_st.modules.lora_transformer.merge_lora];
  [extract_lora][cardio_st.modules.lora_transformer.extract_lora] (a full fine-tune as a small adapter);
  [average_weights][cardio_st.modules.lora_transformer.average_weights] (a model soup).
- [asymmetric_router][cardio_st.modules.asymmetric_router.asymmetric_router]: a small query encoder
  and a large document encoder as one Router, bridged by truncation or a learned projection;
  [save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric] (LoRA routes merged).
"""

from cardio_st.modules.asymmetric_router import asymmetric_router, route_dimensions, save_asymmetric
from cardio_st.modules.eos_pooling import appends_eos, ensure_eos, eos_pooling
from cardio_st.modules.lora_transformer import (
    average_weights,
    extract_lora,
    lora_transformer,
    merge_lora,
    quantization_config,
)

__all__ = [
    "appends_eos",
    "asymmetric_router",
    "average_weights",
    "ensure_eos",
    "eos_pooling",
    "extract_lora",
    "lora_transformer",
    "merge_lora",
    "quantization_config",
    "route_dimensions",
    "save_asymmetric",
]
