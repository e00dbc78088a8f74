"""The zoo's Streamlit dashboard: `streamlit run dashboard/app.py [-- --db URL]` (see app.py)."""
