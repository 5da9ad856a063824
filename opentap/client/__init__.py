"""The OpenTap Python client: devices over HTTP or SSH, captures, fleets, and the data as pandas DataFrames."""
