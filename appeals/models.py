# Appeals, evidence and the review workflow land here (see DESIGN.md section 4).
