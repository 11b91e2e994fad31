"""Item datasets, public data sets built from Debian/npm packages, phone-photo simulation."""
