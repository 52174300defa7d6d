"""Paired MR/CT head and pelvis phantoms with exact truth (transform, labels, tissue values).

Example:
    >>> from medxlate.phantom import PhantomConfig, make_subject
    >>> s = make_subject(PhantomConfig("brain", size=(48, 56, 40), spacing=(4, 4, 4)), 0, 0)
    >>> s.mr["t1w"].shape, s.truth["transform"]["mr_to_ct"][3]
    ((48, 56, 40), [0.0, 0.0, 0.0, 1.0])
"""

from medxlate.phantom.subject import PhantomConfig, Subject, make_subject, subject_id
from medxlate.phantom.transform import (
                                        ct_points_to_mr,
                                        load_truth,
                                        mr_points_to_ct,
                                        mr_to_ct,
                                        registration_error_mm,
)

__all__ = [
                                        "PhantomConfig",
                                        "Subject",
                                        "ct_points_to_mr",
                                        "load_truth",
                                        "make_subject",
                                        "mr_points_to_ct",
                                        "mr_to_ct",
                                        "registration_error_mm",
                                        "subject_id",
]
