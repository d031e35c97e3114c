"""Publishing to the Hugging Face Hub: [stage][cardio_st.hub.stage] writes exactly the files to upload
(the card enriched, an adapter's base named by Hub id) and [push][cardio_st.hub.push] uploads them in one
commit. The card and the training record are written by [cardio_st.models.card][cardio_st.models.card]
and [cardio_st.models.record][cardio_st.models.record], which training and conversion use too.
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["push", "stage"],
    {"PushResult": "push", "check_repo_id": "push", "push_to_hub": "push", "stage_upload": "stage"},
)
