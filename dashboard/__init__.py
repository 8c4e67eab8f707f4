"""The project's Streamlit dashboard over the serving copy (see dashboard/app.py)."""
