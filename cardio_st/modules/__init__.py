"""Building blocks that plug into sentence-transformers and save as its own module types.

- [eos_pooling][cardio_st.modules.eos_pooling.eos_pooling]: last-token pooling with a guaranteed EOS.
- [lora_transformer][cardio_st.modules.lora_transformer.lora_transformer]: a Transformer with a LoRA
  adapter over an optional 8-bit / 4-bit base; [merge_lora][cardio_st.modules.lora_transformer.merge_lora];
  [extract_lora][cardio_st.modules.lora_transformer.extract_lora] (a full fine-tune as a small adapter).
- [asymmetric_router][cardio_st.modules.asymmetric_router.asymmetric_router]: a small query encoder
  and a large document encoder as one Router, bridged by truncation or a learned projection;
  [save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric] (LoRA routes merged).
- [load_route][cardio_st.modules.routes.load_route]: one route of a saved Router (the query encoder
  of an asymmetric retriever) as a model of its own, reading only that route's files.
"""

from cardio_st.modules.asymmetric_router import asymmetric_router, route_dimensions, save_asymmetric
from cardio_st.modules.eos_pooling import appends_eos, ensure_eos, eos_pooling
from cardio_st.modules.lora_transformer import (
    base_model_hub_id,
    extract_lora,
    known_hub_id,
    lora_transformer,
    merge_lora,
    quantization_config,
)
from cardio_st.modules.routes import load_route, read_layout

__all__ = [
    "appends_eos",
    "asymmetric_router",
    "base_model_hub_id",
    "ensure_eos",
    "eos_pooling",
    "extract_lora",
    "known_hub_id",
    "load_route",
    "lora_transformer",
    "merge_lora",
    "quantization_config",
    "read_layout",
    "route_dimensions",
    "save_asymmetric",
]
