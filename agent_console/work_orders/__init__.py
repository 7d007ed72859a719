"""Work orders (工单): numbering, the working-day calendar, filing from a call, orders the hub files itself."""
