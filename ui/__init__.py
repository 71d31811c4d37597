"""Streamlit glue: cached getters, figure builders and small render helpers. With pages/, the only
code that imports streamlit."""
