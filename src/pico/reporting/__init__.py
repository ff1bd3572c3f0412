"""What the report shows: the data's health, the paper's figures and tables, ablations, the reproduction."""
