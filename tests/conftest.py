"""pytest settings for the whole run."""

import os

# scikit-learn's check_array_api_input skips itself unless SCIPY_ARRAY_API is set; with it set,
# the check runs (NumPy namespace only: the estimators declare no array-API support), so the
# common checks have no skipped entries.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
